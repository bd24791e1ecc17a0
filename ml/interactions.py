"""Customer-product interactions in one canonical frame, whatever the source.

Every model in `ml` reads the same frame (COLUMNS below), so a model trained on a replayed
Online Retail file today can be fed from the datamart's SQL tomorrow without a change: only the
loader differs. Online Retail holds purchases only; the stream also carries views and carts,
which the frame names by `event_type`.

Reading the files is not repeated here: `pulsemart.stream.retail_files.load_transactions`
already detects both layouts and all three formats, and `pulsemart.quality` already knows the
shop's dates and its fee codes (postage, manual adjustments, vouchers), so this module asks them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
# The rule that books postage, fees, discounts and vouchers as lines with their own codes.
FEE_RULE_ID = "line.fee_code"


def from_online_retail(path: str | Path) -> pd.DataFrame:
    """The purchases in an Online Retail (or Online Retail II) file, as canonical interactions.

    A purchase is a line with a customer, a quantity and a price above zero, on an invoice that
    is not a cancellation ("C..."), of a stock code that is a product rather than a fee. What was
    left out, and why, is counted in `frame.attrs["dropped"]` (a line counts under its first
    reason, in the order listed there).
    """
    from pulsemart.quality.timestamps import to_utc
    from pulsemart.stream.retail_files import load_transactions

    raw = load_transactions(path)
    invoice = raw["invoice"].astype("string")
    code = raw["stock_code"].astype("string")
    customer = raw["customer_id"].astype("string").str.strip()
    quantity = pd.to_numeric(raw["quantity"], errors="coerce")
    price = pd.to_numeric(raw["unit_price"], errors="coerce")
    event_time = to_utc(raw["invoice_date"])

    reasons = {
        "no_customer": customer.isna() | (customer == ""),
        "cancellation": invoice.str.upper().str.startswith("C").fillna(False).astype(bool),
        "fee_code": is_fee_code(code),
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
    out.attrs["source"] = str(path)
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


def is_fee_code(codes: pd.Series) -> pd.Series:
    """True where a stock code is postage, a fee, an adjustment or a voucher, not a product.

    The list is the quality rule set's (rule `line.fee_code`), so the platform has one
    definition. Codes such as DCGS0003 are not on it: they are real products (ashtrays, party bags).
    """
    names, patterns = _fee_codes()
    text = codes.astype("string").str.strip()
    hit = text.str.upper().isin(names).fillna(False).astype(bool)
    for pattern in patterns:
        hit |= text.str.fullmatch(pattern).fillna(False).astype(bool)
    return hit.astype(bool)


@lru_cache(maxsize=1)
def _fee_codes() -> tuple[frozenset[str], tuple[str, ...]]:
    from pulsemart.quality.rules import load_rules

    params = load_rules().rule(FEE_RULE_ID).detect.params
    # Compared without case: the rule lists the manual-adjustment code as both "M" and "m".
    codes = frozenset(str(c).upper() for c in params.get("codes", ()))
    return codes, tuple(params.get("patterns", ()))


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
