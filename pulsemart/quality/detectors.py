"""Registered detectors: vectorised tests over one column of a batch frame.

A detector is `fn(frame, field, ctx, **params) -> Series[bool]` (True = the rule fires on
that row), or a dict `{field: Series[bool]}` when the fields are only known from the data
(`extra_fields`). Frames hold decoded JSON values in object columns (None/NaN = absent).
Detectors use pandas operations over whole columns; the few that must look at Python types
use `Series.map(type)`, which is one C-level pass.
"""

from __future__ import annotations

import re

import pandas as pd

from pulsemart.contracts.spec import value_matches_dtype
from pulsemart.quality.timestamps import CANONICAL

DETECTORS: dict = {}
# Detectors that can fire where the field has no value; every other one is False on a null,
# so the runner skips it on a field no row of the batch carries (most fields, in a small batch).
FIRES_ON_NULL: set[str] = set()


def detector(fn=None, *, fires_on_null: bool = False):
    def register(fn):
        DETECTORS[fn.__name__] = fn
        if fires_on_null:
            FIRES_ON_NULL.add(fn.__name__)
        return fn

    return register(fn) if fn is not None else register


def column(frame: pd.DataFrame, field: str) -> pd.Series:
    if field in frame.columns:
        return frame[field]
    return pd.Series(None, index=frame.index, dtype=object)


def is_text(values: pd.Series) -> pd.Series:
    return values.map(type) == str


def text_only(values: pd.Series) -> pd.Series:
    """Text values kept, anything else (numbers, lists, None) as None."""
    return values.where(is_text(values), None)


def is_number(values: pd.Series) -> pd.Series:
    return values.map(type).isin([int, float]) & values.notna()


def as_float(values: pd.Series) -> pd.Series:
    """Numbers as floats; anything else (text, bool, None) as NaN."""
    return pd.to_numeric(values.where(is_number(values)), errors="coerce").astype(float)


@detector
def not_iso_timestamp(frame, field, ctx):
    values = column(frame, field)
    text = values.where(is_text(values))
    canonical = text.str.fullmatch(CANONICAL).fillna(False).astype(bool)
    return values.notna() & ~canonical


@detector
def future_timestamp(frame, field, ctx):
    moments = ctx.times(frame, field)
    return (moments > ctx.now + pd.Timedelta(seconds=ctx.settings.future_tolerance_seconds)).fillna(
        False
    )


@detector
def out_of_order(frame, field, ctx):
    """Earlier than an event already seen on the same partition in this batch.

    Only in-batch order is known here; the first events of a batch are not compared with the
    previous batch. Times beyond the future tolerance do not raise the watermark.
    """
    moments = ctx.times(frame, field)
    limit = ctx.now + pd.Timedelta(seconds=ctx.settings.future_tolerance_seconds)
    moments = moments.where(moments <= limit)
    coords = ctx.coordinates.loc[frame.index]
    order = coords.sort_values(["topic", "partition", "offset"]).index
    ordered = moments.loc[order]
    groups = [coords.loc[order, "topic"], coords.loc[order, "partition"]]
    previous = ordered.groupby(groups, dropna=False).cummax().groupby(groups, dropna=False).shift(1)
    return (ordered < previous).fillna(False).reindex(frame.index)


@detector(fires_on_null=True)
def missing(frame, field, ctx):
    return column(frame, field).isna()


@detector
def wrong_type(frame, field, ctx, dtype):
    values = column(frame, field)
    present = values.notna()
    if dtype == "str":
        ok = is_text(values)
    elif dtype == "float":
        ok = is_number(values)
    else:
        ok = values.map(lambda v: value_matches_dtype(v, dtype))
    return present & ~ok


@detector
def text_value(frame, field, ctx, pattern: str | None = None):
    """A text where the contract wants a number; `pattern` narrows it (e.g. a currency sign)."""
    values = column(frame, field)
    text = is_text(values)
    if pattern is None:
        return text
    found = values.where(text).str.contains(pattern, regex=True).fillna(False).astype(bool)
    return text & found


@detector
def nonpositive(frame, field, ctx):
    return (as_float(column(frame, field)) <= 0).fillna(False)


@detector
def unknown_product(frame, field, ctx):
    values = column(frame, field)
    return is_text(values) & ~values.isin(ctx.known_products)


@detector
def untrimmed_text(frame, field, ctx):
    values = column(frame, field)
    text = values.where(is_text(values))
    return text.str.contains(r"^\s|\s$|\s{2}", regex=True).fillna(False).astype(bool)


@detector
def suspicious_text(frame, field, ctx, pattern: str):
    values = column(frame, field)
    text = values.where(is_text(values))
    return text.str.contains(pattern, flags=re.IGNORECASE, regex=True).fillna(False).astype(bool)


@detector(fires_on_null=True)
def is_null(frame, field, ctx):
    return column(frame, field).isna()


@detector(fires_on_null=True)
def null_value(frame, field, ctx):
    """An explicit JSON null (an absent field is NaN in the frame and does not count)."""
    return column(frame, field).map(lambda v: v is None).astype(bool)


@detector(fires_on_null=True)
def always(frame, field, ctx):
    return pd.Series(True, index=frame.index)


@detector
def code_in(frame, field, ctx, codes=(), patterns=()):
    values = column(frame, field)
    hit = values.isin(list(codes))
    if patterns:
        text = values.where(is_text(values))
        for pattern in patterns:
            hit |= text.str.fullmatch(pattern).fillna(False).astype(bool)
    return hit.astype(bool)


@detector
def stock_adjustment(frame, field, ctx):
    """A negative quantity at a price of zero on a placed order: stock written off, not sold."""
    quantity = as_float(column(frame, "quantity"))
    price = as_float(column(frame, "unit_price"))
    return ((quantity < 0) & (price == 0)).fillna(False)


@detector
def extra_fields(frame, field, ctx, allowed=(), only=None):
    """Fields the contract does not declare, one mask per such column.

    `allowed` names extras this rule ignores; `only` restricts the rule to the extras named.
    """
    out: dict[str, pd.Series] = {}
    for event_type, index in frame.groupby("_event_type").groups.items():
        declared = ctx.declared_fields(event_type, frame.attrs.get("scope", "event"))
        extras = [
            name
            for name in frame.columns
            if not name.startswith("_")
            and name not in declared
            and name not in allowed
            and not (name == "event_id" and frame.attrs.get("scope") == "line")
            and (only is None or name in only)
        ]
        if not extras:
            continue
        present = frame.loc[index, extras].notna()
        for name in extras:
            hit = present[name]
            if hit.any():
                mask = out.setdefault(name, pd.Series(False, index=frame.index))
                mask.loc[hit[hit].index] = True
    return out
