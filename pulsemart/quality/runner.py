"""Running the rules over a frame: detections, repairs applied in place, findings recorded."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from pulsemart.quality.detectors import DETECTORS, FIRES_ON_NULL, column
from pulsemart.quality.repairs import CONFIDENCE_SOURCES, REPAIRS
from pulsemart.quality.rules import Rule


class Mark(NamedTuple):
    """A flag rule that fired on the rows `index` of a frame (see `run_rules`)."""

    rule_id: str
    name: str
    severity: str
    index: pd.Index


# row: the event's row; pos/line: the line's position in the order and its row in the line
# frame (-1 for event fields); name: the field, field: its path ("lines[2].unit_price").
FINDING_COLUMNS = [
    "row",
    "pos",
    "line",
    "rule_id",
    "name",
    "field",
    "before",
    "after",
    "confidence",
    "repaired",
    "severity",
    "weight",
    "hold",
]


def run_rules(
    frame: pd.DataFrame, rules, ctx, scope: str, exempt: dict, marks: list | None = None
) -> pd.DataFrame:
    """Apply each rule of `scope` in file order; later rules see earlier repairs.

    `exempt` maps a field to the rows (frame index) rules and contract must leave alone; an
    info rule with `exempts` adds to it (a fee line's price is not an error). With `marks`,
    flags without a repair are kept there as `Mark`s instead of one finding per row: on order
    lines they fire by the hundred thousand and only need counting.
    """
    parts = []
    types = frame["_event_type"]
    # The rows of each set of event types, taken again only after a repair wrote to the frame
    # (later rules see earlier repairs): on a small batch, selecting them per rule and field
    # costs more than most detectors do.
    subs: dict = {}
    for rule in rules:
        if rule.scope != scope:
            continue
        if _rows_of(frame, types, rule.event_types, subs) is None:
            continue
        for field in rule.fields or (None,):
            # Not None: this rule's types had rows above, and repairs never change a type.
            sub, filled = _rows_of(frame, types, rule.event_types, subs) or (frame, set())
            if field is not None and field not in filled and rule.detect.name not in FIRES_ON_NULL:
                continue
            result = DETECTORS[rule.detect.name](sub, field, ctx, **rule.detect.params)
            masks = result if isinstance(result, dict) else {field: result}
            for name, mask in masks.items():
                mask = mask.reindex(sub.index, fill_value=False).astype(bool)
                if name in exempt:
                    mask &= ~exempt[name].reindex(sub.index, fill_value=False)
                if not mask.any():
                    continue
                if marks is not None and rule.severity != "error" and rule.repair is None:
                    marks.append(Mark(rule.id, name, rule.severity, sub.index[mask.to_numpy()]))
                else:
                    part, wrote = _fire(frame, sub, rule, name, mask, ctx, scope)
                    parts.append(part)
                    if wrote:
                        subs.clear()
                for target in rule.exempts:
                    current = exempt.get(target, pd.Series(False, index=frame.index))
                    current = current.reindex(frame.index, fill_value=False)
                    current.loc[mask[mask].index] = True
                    exempt[target] = current
    if not parts:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def _rows_of(frame, types, event_types, subs: dict) -> tuple[pd.DataFrame, set] | None:
    """The rows of `frame` whose type is one of `event_types` and the columns with a value in
    any of them (None if there are no such rows)."""
    key = tuple(event_types)
    if key not in subs:
        applicable = types.isin(event_types)
        if applicable.any():
            sub = frame[applicable]
            filled = sub.columns[sub.notna().any().to_numpy()]
            subs[key] = (sub, set(filled))
        else:
            subs[key] = None
    return subs[key]


def _fire(frame, sub, rule: Rule, field, mask, ctx, scope) -> tuple[pd.DataFrame, bool]:
    """The rule's findings on the rows of `mask`, and whether a repair wrote to `frame`."""
    index = sub.index[mask.to_numpy()]
    before = column(sub, field).loc[index] if field else pd.Series(None, index=index)
    after = pd.Series(None, index=index, dtype=object)
    confidence = pd.Series(np.nan, index=index)
    repaired = pd.Series(False, index=index)
    wrote = False
    if rule.repair is not None and field:
        values, ok, aux = REPAIRS[rule.repair.name](sub, field, mask, ctx, **rule.repair.params)
        ok = ok.reindex(index, fill_value=False).astype(bool)
        conf = _confidence(rule.confidence, aux, index)
        good = index[ok.to_numpy()]
        if len(good):
            if field not in frame.columns:
                frame[field] = pd.Series(None, index=frame.index, dtype=object)
            frame.loc[good, field] = pd.Series(values.loc[good], dtype=object)
            ctx.changed(field)
            wrote = True
            after.loc[good] = values.loc[good]
            confidence.loc[good] = conf.loc[good]
            repaired.loc[good] = True
    n = len(index)
    if scope == "line":
        rows = frame.loc[index, "_row"].to_numpy(dtype=np.int64)
        pos = frame.loc[index, "_pos"].to_numpy(dtype=np.int64)
        lines = index.to_numpy(dtype=np.int64)
        paths = np.array([f"lines[{p}].{field}" for p in pos.tolist()], dtype=object)
    else:
        rows, pos, lines = index.to_numpy(dtype=np.int64), np.full(n, -1), np.full(n, -1)
        paths = np.full(n, field, dtype=object)
    # Object arrays, not pandas' inferred string dtype: findings are read back row by row.
    findings = pd.DataFrame(
        {
            "row": rows,
            "pos": pos,
            "line": lines,
            "rule_id": np.full(n, rule.id, dtype=object),
            "name": np.full(n, field, dtype=object),
            "field": paths,
            "before": before.to_numpy(dtype=object),
            "after": after.to_numpy(dtype=object),
            "confidence": confidence.to_numpy(),
            "repaired": repaired.to_numpy(),
            "severity": np.full(n, rule.severity, dtype=object),
            "weight": rule.weight,
            "hold": rule.hold,
        }
    )
    return findings, wrote


def _confidence(spec, aux, index) -> pd.Series:
    if isinstance(spec, dict):
        params = {k: v for k, v in spec.items() if k != "from"}
        values = CONFIDENCE_SOURCES[spec["from"]](aux.reindex(index), **params)
        return values.reindex(index).astype(float).fillna(0.0)
    return pd.Series(float(spec), index=index)
