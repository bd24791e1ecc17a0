"""What detectors and repairs may look at besides their own column: the batch context."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import pandas as pd

from pulsemart.contracts import CONTRACTS, ENVELOPE_FIELDS
from pulsemart.quality.catalog import CatalogState, stability
from pulsemart.quality.detectors import as_float, is_text
from pulsemart.quality.rules import Settings
from pulsemart.quality.timestamps import to_utc

PRICE_EVENTS = ("product_upserted", "price_changed")
# Events that show the price a customer saw: evidence of the current price even when the
# catalog event that set it was lost (quarantined) upstream.
OBSERVED = ("product_viewed", "cart_updated")


@cache
def declared(event_type: str, scope: str) -> frozenset:
    contract = CONTRACTS[event_type]
    if scope == "line":
        return frozenset(spec.name for spec in contract.line_fields)
    return frozenset(ENVELOPE_FIELDS) | {spec.name for spec in contract.fields}


@dataclass
class BatchContext:
    now: pd.Timestamp
    settings: Settings
    catalog: CatalogState  # the state as given (read-only here)
    known_products: set
    keys: pd.Series  # the record key as text, per event row
    coordinates: pd.DataFrame  # topic, partition, offset per event row
    events: pd.DataFrame  # the batch's event frame (repairs land in it as rules run)
    single_price_confidence: float = 0.9
    _price_points: pd.DataFrame | None = field(default=None, repr=False)
    _times: pd.Series | None = field(default=None, repr=False)

    def times(self, frame: pd.DataFrame, field: str) -> pd.Series:
        """`field` of `frame` as UTC timestamps; event_time is parsed once per batch state."""
        if field != "event_time" or frame.attrs.get("scope") == "line":
            return to_utc(frame[field] if field in frame else pd.Series(None, frame.index))
        if self._times is None:
            self._times = (
                to_utc(self.events["event_time"])
                if "event_time" in self.events
                else pd.Series(pd.NaT, index=self.events.index, dtype="datetime64[ns, UTC]")
            )
        return self._times.reindex(frame.index)

    def changed(self, field: str) -> None:
        """A rule repaired `field`: cached derivations of it are stale."""
        if field == "event_time":
            self._times = None
        if field in ("event_time", "unit_price", "product_id"):
            self._price_points = None

    def declared_fields(self, event_type: str, scope: str) -> frozenset:
        return declared(event_type, scope)

    def row_times(self, rows: pd.DataFrame) -> pd.Series:
        if "_row" in rows.columns:
            times = self.times(self.events, "event_time").loc[rows["_row"].astype(int)]
            times.index = rows.index
            return times
        return self.times(rows, "event_time")

    def price_as_of(self, products: pd.Series, times: pd.Series) -> pd.Series:
        """The catalog price of each product at each time (the latest when the time is unknown).

        Price events of this batch count from their event time on, so a price change later in
        the batch does not reprice an earlier view.
        """
        points = self._points()
        out = pd.Series(float("nan"), index=products.index)
        if points.empty or products.empty:
            return out
        query = pd.DataFrame({"product_id": products.astype(object), "time": times})
        known_time = query["time"].notna()
        timed = query[known_time].reset_index().sort_values("time")
        if len(timed):
            merged = pd.merge_asof(
                timed,
                points.sort_values("time"),
                on="time",
                by="product_id",
                direction="backward",
            )
            out.loc[merged["index"].to_numpy()] = merged["price"].astype(float).to_numpy()
        latest = points.sort_values("time").groupby("product_id")["price"].last()
        missing = out.isna()
        if missing.any():
            out.loc[missing] = query.loc[missing, "product_id"].map(latest).astype(float)
        return out.astype(float)

    def attribute(self, products: pd.Series, name: str) -> pd.Series:
        """A product attribute (description, category, ...) from the state, or from a
        product_upserted earlier in this batch when the state has none."""
        known = self.catalog.attribute(products, name)
        if name in self.events.columns and known.isna().any():
            upserts = self.events[self.events["_event_type"] == "product_upserted"]
            upserts = (
                upserts[is_text(upserts["product_id"])]
                if "product_id" in upserts
                else upserts.iloc[0:0]
            )
            values = upserts[name][is_text(upserts[name])]
            latest = dict(zip(upserts.loc[values.index, "product_id"], values, strict=True))
            known = known.where(known.notna(), products.map(latest))
        return known

    def price_stability(self, products: pd.Series) -> pd.Series:
        """1 - CV of each product's recent prices: the state's history plus this batch's
        catalog prices (see `CatalogState.price_confidence`)."""
        points = self._points()
        batch = points[points["_batch"]]
        extra = batch.groupby("product_id")["price"].agg(list).to_dict() if len(batch) else {}
        table = {}
        for pid in {p for p in products if isinstance(p, str)}:
            product = self.catalog.products.get(pid)
            prices = (list(product.recent_prices) if product else []) + extra.get(pid, [])
            table[pid] = stability(prices, self.single_price_confidence)
        return products.map(table).astype(float).fillna(0.0)

    def _points(self) -> pd.DataFrame:
        if self._price_points is not None:
            return self._price_points
        state = [
            (
                pid,
                p.price_time if p.price_time is not None else pd.Timestamp.min.tz_localize("UTC"),
                p.unit_price,
            )
            for pid, p in self.catalog.products.items()
            if p.unit_price is not None
        ]
        frame = pd.DataFrame(state, columns=["product_id", "time", "price"])
        frame["_batch"] = False
        frame["time"] = pd.to_datetime(frame["time"], utc=True).astype("datetime64[ns, UTC]")
        batch = self.events[self.events["_event_type"].isin(PRICE_EVENTS + OBSERVED)]
        if len(batch) and "product_id" in batch and "unit_price" in batch:
            prices = as_float(batch["unit_price"])
            times = self.times(batch, "event_time")
            good = (prices > 0) & times.notna() & is_text(batch["product_id"])
            frame = pd.concat(
                [
                    frame,
                    pd.DataFrame(
                        {
                            "product_id": batch.loc[good, "product_id"],
                            "time": times[good],
                            "price": prices[good],
                            "_batch": True,
                        }
                    ),
                ],
                ignore_index=True,
            )
        frame["time"] = frame["time"].astype("datetime64[ns, UTC]")
        frame["product_id"] = frame["product_id"].astype(object)
        frame["price"] = frame["price"].astype(float)
        self._price_points = frame
        return frame
