"""Customer-product interactions in one canonical frame, whatever the source.

Every model in `ml` reads the same frame (COLUMNS below), so a model trained on a replayed
Online Retail file today can be fed from the datamart's SQL tomorrow without a change: only the
loader differs. Online Retail holds purchases only; the stream also carries views and carts,
which the frame names by `event_type`.

Pure modelling: this module reads no file and knows no rule set. `from_transactions` takes
transaction lines already read and dated, and the fee codes (postage, manual adjustments,
vouchers) as an argument; pulsemart.ml_store.retail reads a file with the stream's reader and
passes the quality rule set's codes, so the platform keeps one definition of each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

EVENT_TYPES = ("purchase", "view", "cart")
COLUMNS = (
    "customer_id",
    "product_id",
    "event_time",
    "event_type",
    "quantity",
    "unit_price",
    "order_id",
    "session_id",
    "country",
    "description",
)
REQUIRED = ("customer_id", "product_id", "event_time", "event_type")
OPTIONAL_TEXT = ("order_id", "session_id", "country", "description")
TIME_DTYPE = "datetime64[ns, UTC]"
TRANSACTION_COLUMNS = (
    "invoice",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "unit_price",
    "customer_id",
    "country",
)


@dataclass(frozen=True)
class FeeCodes:
    """Stock codes that are postage, a fee, an adjustment or a voucher rather than a product:
    exact codes (compared without case) and regular expressions (matched in full)."""

    codes: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, codes: Iterable[str] = (), patterns: Iterable[str] = ()) -> FeeCodes:
        return cls(frozenset(str(c).strip().upper() for c in codes), tuple(patterns))

    @classmethod
    def from_params(cls, params: Mapping) -> FeeCodes:
        """From a rule's parameters ({"codes": [...], "patterns": [...]})."""
        return cls.of(params.get("codes", ()), params.get("patterns", ()))


def from_transactions(raw: pd.DataFrame, fee_codes: FeeCodes) -> pd.DataFrame:
    """The purchases among transaction lines (TRANSACTION_COLUMNS, `invoice_date` already UTC
    timestamps, NaT when unreadable), as canonical interactions.

    A purchase is a line with a customer, a quantity and a price above zero, on an invoice that
    is not a cancellation ("C..."), of a stock code that is a product rather than a fee. What was
    left out, and why, is counted in `frame.attrs["dropped"]` (a line counts under its first
    reason, in the order listed there); `attrs["rows_read"]` is the number of lines given.
    """
    missing = [c for c in TRANSACTION_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"transaction lines are missing column(s) {', '.join(missing)}")
    invoice = raw["invoice"].astype("string")
    code = raw["stock_code"].astype("string")
    customer = raw["customer_id"].astype("string").str.strip()
    quantity = pd.to_numeric(raw["quantity"], errors="coerce")
    price = pd.to_numeric(raw["unit_price"], errors="coerce")
    event_time = _utc(raw["invoice_date"])

    reasons = {
        "no_customer": customer.isna() | (customer == ""),
        "cancellation": invoice.str.upper().str.startswith("C").fillna(False).astype(bool),
        "fee_code": is_fee_code(code, fee_codes),
        "quantity_not_positive": ~(quantity > 0),
        "price_not_positive": ~(price > 0),
        "unreadable_time": event_time.isna(),
    }
    keep = pd.Series(True, index=raw.index)
    dropped = {}
    for reason, mask in reasons.items():
        hit = keep & mask.to_numpy(dtype=bool)
        dropped[reason] = int(hit.sum())
        keep &= ~hit

    frame = pd.DataFrame(
        {
            "customer_id": customer[keep],
            "product_id": code[keep].str.strip(),
            "event_time": event_time[keep],
            "event_type": "purchase",
            "quantity": quantity[keep],
            "unit_price": price[keep],
            "order_id": invoice[keep],
            "session_id": None,
            "country": raw["country"][keep],
            "description": raw["description"][keep],
        }
    )
    out = from_frame(frame)
    out.attrs.update({k: v for k, v in raw.attrs.items() if k == "source"})
    out.attrs["rows_read"] = len(raw)
    out.attrs["dropped"] = dropped
    return out


def from_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """An already-canonical frame, checked and with its dtypes made exact.

    Raises ValueError naming every missing required column, and any unknown event types. Missing
    optional columns are added empty; `quantity` defaults to 1 and `unit_price` to NaN, so a feed
    of views with neither still loads. Extra columns are dropped.
    """
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(
            f"interactions frame is missing required column(s) {', '.join(missing)}; "
            f"expected {', '.join(COLUMNS)}"
        )
    n = len(frame)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    for column in ("customer_id", "product_id"):
        values = _text(frame[column])
        if values.isna().any():
            raise ValueError(f"interactions frame has {int(values.isna().sum())} empty {column}")
        out[column] = values.astype(str).to_numpy()
    out["event_time"] = _utc(frame["event_time"])
    if out["event_time"].isna().any():
        raise ValueError(
            f"interactions frame has {int(out['event_time'].isna().sum())} unreadable event_time"
        )
    event_type = frame["event_type"].astype("string").str.lower().to_numpy()
    unknown = sorted(set(event_type) - set(EVENT_TYPES), key=str)
    if unknown:
        raise ValueError(
            f"interactions frame has unknown event_type(s) {unknown}; expected {EVENT_TYPES}"
        )
    out["event_type"] = event_type.astype(object)
    out["quantity"] = _number(frame, "quantity", default=1.0)
    out["unit_price"] = _number(frame, "unit_price", default=np.nan)
    for column in OPTIONAL_TEXT:
        values = _text(frame[column]) if column in frame.columns else pd.Series([None] * n)
        # object dtype so a gap is None (pandas' "str" dtype would make it NaN).
        out[column] = pd.Series(values.to_numpy(dtype=object, na_value=None), dtype=object)
    out = out.sort_values(["event_time", "customer_id"], kind="stable", ignore_index=True)
    out.attrs = dict(frame.attrs)
    return out


def purchases(interactions: pd.DataFrame) -> pd.DataFrame:
    """The purchase rows only."""
    return interactions[interactions["event_type"] == "purchase"]


def is_fee_code(codes: pd.Series, fee_codes: FeeCodes) -> pd.Series:
    """True where a stock code is one of `fee_codes` (a fee, not a product)."""
    text = codes.astype("string").str.strip()
    hit = text.str.upper().isin(fee_codes.codes).fillna(False).astype(bool)
    for pattern in fee_codes.patterns:
        hit |= text.str.fullmatch(pattern).fillna(False).astype(bool)
    return hit.astype(bool)


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.where(text != "")


def _utc(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = values.dt.tz_localize("UTC")  # naive times from SQL are UTC by convention
    else:
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    return pd.Series(parsed.astype(TIME_DTYPE).to_numpy(), dtype=TIME_DTYPE)


def _number(frame: pd.DataFrame, column: str, default: float) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), default, dtype=float)
    values = pd.to_numeric(frame[column], errors="coerce").astype(float).to_numpy()
    return np.where(np.isnan(values), default, values)
