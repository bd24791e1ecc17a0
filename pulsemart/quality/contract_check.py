"""The contracts' Pandera schemas run lazily over the repaired frames.

Each failing element names its row (Pandera's `failure_cases.index`), so rows, not batches,
are quarantined. Fields a rule exempted (a fee line's quantity) are not held against a row.
Frame-level failures (no index) fall on every row of that frame.
"""

from __future__ import annotations

import json
from functools import cache

import pandas as pd
import pandera.errors as pa_errors

from pulsemart.contracts import CONTRACTS, ENVELOPE, order_lines_schema, pandera_schema

FAILURE_COLUMNS = ["row", "pos", "schema", "column", "check", "failure_case"]


def _columns(specs) -> tuple[list[str], list[str]]:
    names = [spec.name for spec in specs]
    required = [spec.name for spec in specs if spec.required]
    return names, required


def _validate(schema, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        schema.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as error:
        return error.failure_cases
    except TypeError:
        # A list or object where a scalar belongs (`"line_id": []`) breaks Pandera's hashing
        # checks (unique, isin) before its dtype check can report it. Rare, so only then are
        # such cells turned into their JSON text: the dtype check fails them by row, as it should.
        return _validate(schema, frame.map(_hashable))
    return pd.DataFrame(columns=["column", "check", "failure_case", "index"])


def _hashable(value):
    return json.dumps(value, default=str) if isinstance(value, (list, dict, set)) else value


def _select(frame: pd.DataFrame, names, required) -> pd.DataFrame:
    present = [n for n in names if n in frame.columns or n in required]
    return frame.reindex(columns=present).astype(object)


def check_events(events: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for event_type, index in events.groupby("_event_type").groups.items():
        names, required = _columns(ENVELOPE + CONTRACTS[event_type].fields)
        frame = _select(events.loc[index], names, required)
        cases = _validate(pandera_schema(event_type), frame)
        parts.append(_rows(cases, index, event_type, lambda i: (i, -1)))
    return _concat(parts)


def check_lines(lines: pd.DataFrame, exempt: dict) -> pd.DataFrame:
    """Lines are validated in groups that share their exempted columns, each group with a
    schema whose exempted columns keep only their presence and null checks."""
    parts: list[pd.DataFrame] = []
    if lines.empty:
        return _concat(parts)
    waived = pd.Series("", index=lines.index)
    for name in sorted(exempt):
        mask = exempt[name].reindex(lines.index, fill_value=False).astype(bool)
        waived = waived.mask(mask, waived + "," + name)
    pairs = lines[["_row", "_pos"]]
    for (event_type, signature), index in lines.groupby(["_event_type", waived]).groups.items():
        names, required = _columns(CONTRACTS[event_type].line_fields)
        frame = _select(lines.loc[index], ["event_id", *names], ["event_id", *required])
        schema = _lines_schema(event_type, tuple(n for n in signature.split(",") if n))
        cases = _validate(schema, frame)
        parts.append(
            _rows(
                cases,
                index,
                f"{event_type}.lines",
                lambda i: (int(pairs.at[i, "_row"]), int(pairs.at[i, "_pos"])),
            )
        )
    return _concat(parts)


@cache
def _lines_schema(event_type: str, waived: tuple[str, ...]):
    schema = order_lines_schema(event_type)
    present = [name for name in waived if name in schema.columns]
    if not present:
        return schema
    return schema.update_columns({name: {"checks": []} for name in present})


def _rows(cases: pd.DataFrame, index, schema: str, locate) -> pd.DataFrame:
    out = []
    for column, check, case, i in zip(
        cases["column"], cases["check"], cases["failure_case"], cases["index"], strict=True
    ):
        targets = [i] if pd.notna(i) else list(index)  # frame-level: every row of the frame
        for target in targets:
            row, pos = locate(int(target))
            out.append(
                (row, pos, schema, column if pd.notna(column) else None, str(check), _short(case))
            )
    return pd.DataFrame(out, columns=FAILURE_COLUMNS)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _concat(parts) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FAILURE_COLUMNS)
