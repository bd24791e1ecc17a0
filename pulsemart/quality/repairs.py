"""Registered repairs and confidence sources.

A repair is `fn(frame, field, mask, ctx, **params) -> (values, ok, aux)`: repaired values for
the rows in `mask`, which of them could be repaired, and an auxiliary series a confidence
source reads (the timestamp format found, the kind of number text, a price's stability).
A confidence source is `fn(aux, **params) -> Series[float]`.
"""

from __future__ import annotations

import json

import pandas as pd

from pulsemart.quality.detectors import as_float, column, is_text, text_only
from pulsemart.quality.timestamps import classify, to_canonical, to_utc

REPAIRS: dict = {}
CONFIDENCE_SOURCES: dict = {}


def repair(fn):
    REPAIRS[fn.__name__] = fn
    return fn


def confidence_source(fn):
    CONFIDENCE_SOURCES[fn.__name__] = fn
    return fn


@repair
def normalise_timestamp(frame, field, mask, ctx, assume_timezone="UTC"):
    values = column(frame, field)[mask]
    formats = classify(values)
    moments = to_utc(values, formats, assume_timezone)
    return to_canonical(moments), moments.notna(), formats


# A number written as text: an optional currency (sign or code), digits, an optional
# decimal part with a point or a comma (a comma followed by exactly two digits: "2,55").
_NUMBER = (
    r"^\s*(?P<cur>[£$€]|GBP|USD|EUR)?\s*(?P<sign>-)?\s*(?P<cur2>[£$€])?"
    r"(?P<int>\d+)(?:(?P<sep>[.,])(?P<frac>\d+))?\s*(?P<cur3>GBP|USD|EUR|[£$€])?\s*$"
)
_SHOP_CURRENCY = {"£", "GBP"}


@repair
def parse_number(frame, field, mask, ctx, integer=False):
    values = column(frame, field)[mask]
    parts = values.where(is_text(values)).str.extract(_NUMBER)
    currency = parts["cur"].fillna(parts["cur2"]).fillna(parts["cur3"])
    comma = parts["sep"].eq(",")
    ambiguous = comma & parts["frac"].str.len().ne(2)  # "2,550": thousands or decimals?
    text = parts["sign"].fillna("") + parts["int"] + ("." + parts["frac"]).fillna("")
    numbers = pd.to_numeric(text, errors="coerce")
    ok = numbers.notna() & ~ambiguous.fillna(False)
    if integer:
        ok &= (numbers % 1 == 0).fillna(False)
        numbers = numbers.where(ok).astype("Int64").astype(object)
    kind = pd.Series("plain", index=values.index)
    kind = kind.mask(currency.notna(), "currency")
    kind = kind.mask(currency.notna() & ~currency.isin(_SHOP_CURRENCY), "foreign_currency")
    kind = kind.mask(comma.fillna(False), "decimal_comma")
    values_out = numbers.astype(object).where(ok, None)
    if not integer:
        values_out = values_out.map(lambda v: None if v is None else float(v))
    return values_out, ok.fillna(False).astype(bool), kind


_TRUE, _FALSE = {"true", "yes", "1", "y", "t"}, {"false", "no", "0", "n", "f"}


@repair
def coerce_type(frame, field, mask, ctx, dtype):
    values = column(frame, field)[mask]
    coerced = values.map(lambda v: _coerce(v, dtype))
    ok = coerced.map(lambda v: v is not _FAIL)
    return coerced.where(ok, None), ok.astype(bool), None


_FAIL = object()


def _coerce(value, dtype):
    try:
        if dtype == "int":
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value.strip())
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif dtype == "bool" and isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE or low in _FALSE:
                return low in _TRUE
        elif dtype == "lines" and isinstance(value, str):
            lines = json.loads(value)
            if isinstance(lines, list) and lines and all(isinstance(x, dict) for x in lines):
                return lines
        elif dtype == "str_list" and isinstance(value, str):
            return [item for item in value.split(",") if item] if value else []
    except (ValueError, RecursionError):
        pass
    return _FAIL


@repair
def from_key(frame, field, mask, ctx):
    keys = ctx.keys.loc[frame.index[mask]]
    ok = is_text(keys) & keys.str.len().between(1, 64).fillna(False)
    return keys.where(ok, None), ok.astype(bool), None


@repair
def constant(frame, field, mask, ctx, value):
    index = frame.index[mask]
    return (
        pd.Series([value] * len(index), index=index, dtype=object),
        pd.Series(True, index=index),
        None,
    )


@repair
def catalog_price(frame, field, mask, ctx, sign_flip_confidence=0.99):
    """The catalog's price of the row's product at the row's event time.

    The aux is the product's price stability (`price_history`); a negative price whose
    absolute value is the catalog price is a sign flip and is as sure as `sign_flip_confidence`.
    """
    rows = frame[mask]
    products = text_only(column(rows, "product_id"))
    times = ctx.row_times(rows)
    prices = ctx.price_as_of(products, times)
    stability = ctx.price_stability(products)
    before = as_float(column(rows, field))
    flip = ((before < 0) & ((before.abs() - prices).abs() < 0.005)).fillna(False)
    stability = stability.mask(flip, stability.clip(lower=sign_flip_confidence))
    ok = prices.notna()
    return prices.astype(object).where(ok, None), ok, stability


@repair
def absolute_value(frame, field, mask, ctx):
    before = as_float(column(frame, field)[mask])
    ok = (before < 0).fillna(False)
    return before.abs().astype(object).where(ok, None), ok, None


@repair
def catalog_attribute(frame, field, mask, ctx, attribute=None):
    products = text_only(column(frame[mask], "product_id"))
    values = ctx.attribute(products, attribute or field)
    ok = values.notna() & values.map(lambda v: isinstance(v, str) and bool(v.strip()))
    return values.where(ok, None), ok.astype(bool), None


@repair
def normalise_text(frame, field, mask, ctx):
    values = column(frame, field)[mask]
    normal = values.str.strip().str.replace(r"\s{2,}", " ", regex=True)
    ok = normal.notna() & normal.str.len().gt(0)
    return normal.where(ok, None), ok.astype(bool), None


# -- confidence sources ----------------------------------------------------------------------


@confidence_source
def timestamp_format(aux, by_format=None, default=0.0):
    return aux.map(by_format or {}).astype(float).fillna(default)


@confidence_source
def number_format(aux, by_kind=None, default=0.0):
    return aux.map(by_kind or {}).astype(float).fillna(default)


@confidence_source
def price_history(aux, floor=0.0, ceiling=1.0):
    return aux.astype(float).clip(lower=floor, upper=ceiling).fillna(0.0)
