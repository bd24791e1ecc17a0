"""Pandera schemas derived from the contracts, for batches of decoded events.

Every check is element-wise and tolerant of values of the wrong type (the dtype check flags
those), so lazy validation (`schema.validate(frame, lazy=True)`) reports each bad value with
its row index instead of failing a whole column: the quality layer quarantines rows, not
batches. Columns therefore carry no pandas dtype; build frames with `events_frame`, which keeps
the decoded Python values as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import pandas as pd
import pandera.pandas as pa

from pulsemart.contracts.builder import contract_for
from pulsemart.contracts.events import ENVELOPE
from pulsemart.contracts.spec import FieldSpec, Rule, isin, rule_holds, value_matches_dtype

LINE_KEY_FIELD = "event_id"


@cache
def pandera_schema(event_type: str) -> pa.DataFrameSchema:
    """Schema for a frame with one row per event of `event_type` (envelope and its fields).

    Nested order lines are checked for shape only; `order_lines_schema` checks their fields.
    """
    contract = contract_for(event_type)
    envelope = tuple(
        _with_rule(spec, isin(event_type)) if spec.name == "event_type" else spec
        for spec in ENVELOPE
    )
    columns = {spec.name: _column(spec) for spec in envelope + contract.fields}
    # A re-sent event is only the second occurrence; the first is kept.
    columns["event_id"] = _column(envelope[0], unique=True)
    return pa.DataFrameSchema(
        columns,
        strict=True,
        name=event_type,
        description=contract.doc,
    )


@cache
def order_lines_schema(event_type: str = "order_placed") -> pa.DataFrameSchema:
    """Schema for a frame with one row per order line (see `order_lines_frame`)."""
    contract = contract_for(event_type)
    if not contract.line_fields:
        raise ValueError(f"{event_type} events have no order lines")
    columns = {LINE_KEY_FIELD: _column(ENVELOPE[0])}
    columns.update({spec.name: _column(spec) for spec in contract.line_fields})
    return pa.DataFrameSchema(
        columns,
        strict=True,
        unique=[LINE_KEY_FIELD, "line_id"],
        report_duplicates="exclude_first",
        name=f"{event_type}.lines",
    )


def events_frame(events: Iterable[dict]) -> pd.DataFrame:
    """Decoded events as a frame that keeps each value's Python type (object columns)."""
    return pd.DataFrame(list(events), dtype=object)


def order_lines_frame(events: Iterable[dict]) -> pd.DataFrame:
    """One row per order line, with the event_id of the order it belongs to.

    Events whose `lines` is not a list of objects contribute no rows; their own schema
    already reports them.
    """
    rows = [
        {LINE_KEY_FIELD: event.get(LINE_KEY_FIELD), **line}
        for event in events
        if isinstance(event.get("lines"), list)
        for line in event["lines"]
        if isinstance(line, dict)
    ]
    return pd.DataFrame(rows, dtype=object)


def _with_rule(spec: FieldSpec, rule: Rule) -> FieldSpec:
    return FieldSpec(spec.name, spec.dtype, spec.required, spec.nullable, spec.rules + (rule,))


def _column(spec: FieldSpec, unique: bool = False) -> pa.Column:
    checks = [_dtype_check(spec.dtype)] + [_rule_check(rule) for rule in spec.rules]
    return pa.Column(
        checks=checks,
        nullable=spec.nullable,
        required=spec.required,
        unique=unique,
        report_duplicates="exclude_first",
        description=spec.doc or None,
    )


def _dtype_check(dtype: str) -> pa.Check:
    return pa.Check(
        lambda value: value_matches_dtype(value, dtype),
        element_wise=True,
        name=f"dtype({dtype})",
    )


def _rule_check(rule: Rule) -> pa.Check:
    return pa.Check(
        lambda value: rule_holds(rule, value),
        element_wise=True,
        name=rule.describe(),
    )
