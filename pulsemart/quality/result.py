"""`EngineResult` and the frames it holds: clean events, order lines, quarantine, held."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pulsemart.quality.catalog import CatalogState
from pulsemart.quality.decide import ACCEPTED, FIXED, HELD, QUARANTINED
from pulsemart.quality.detectors import as_float, column
from pulsemart.quality.parse import payload_text
from pulsemart.quality.timestamps import to_utc

RELEASED = (ACCEPTED, FIXED)


@dataclass
class EngineResult:
    clean: pd.DataFrame
    order_lines: pd.DataFrame
    quarantine: pd.DataFrame
    held: pd.DataFrame
    catalog: CatalogState
    rule_counts: pd.DataFrame  # rule_id, decision, records
    contract_failures: pd.DataFrame  # schema, column, check, failures
    contract_samples: list[dict]
    conservation: dict
    rule_set_version: str

    def metadata(self) -> dict:
        """Plain values for a Dagster asset check or materialization."""
        return {
            "rule_set_version": self.rule_set_version,
            "conservation": self.conservation,
            "failure_counts": {
                f"{r.schema}:{r.column}:{r.check}": int(r.failures)
                for r in self.contract_failures.itertuples()
            },
            "rule_counts": {
                f"{r.rule_id}:{r.decision}": int(r.records) for r in self.rule_counts.itertuples()
            },
            "samples": self.contract_samples,
        }


def assemble(
    records,
    parsed,
    events,
    lines,
    as_found,
    findings,
    failures,
    decisions,
    catalog,
    now,
    rules,
    marks=(),
) -> EngineResult:
    decision = decisions["decision"]
    explained = _explanations(findings, failures, lines, marks)
    released = decision.index[decision.isin(RELEASED).to_numpy()]
    clean = _clean(records, parsed, events, findings, decisions.loc[released], explained, rules)
    order_lines = _order_lines(events, lines, as_found, findings, decision, marks)
    quarantine = _quarantine(
        records, parsed, decisions[decision == QUARANTINED], explained, now, rules
    )
    held_rows = decision.index[(decision == HELD).to_numpy()]
    held = records.loc[held_rows, ["topic", "partition", "offset", "key", "value"]].copy()
    held["event_id"] = [parsed.event_ids[i] for i in held_rows]
    held["first_held_at"] = records.loc[held_rows, "first_held_at"].fillna(now)
    held["reasons"] = [json.dumps(decisions.at[i, "reasons"]) for i in held_rows]
    counts = decision.value_counts()
    conservation = {
        "in": len(records),
        **{name: int(counts.get(name, 0)) for name in (ACCEPTED, FIXED, QUARANTINED, HELD)},
    }
    conservation["balanced"] = conservation["in"] == sum(
        conservation[n] for n in (ACCEPTED, FIXED, QUARANTINED, HELD)
    )
    fail_counts = (
        failures.groupby(["schema", "column", "check"], dropna=False)
        .size()
        .rename("failures")
        .reset_index()
        if len(failures)
        else pd.DataFrame(columns=["schema", "column", "check", "failures"])
    )
    samples = failures.head(rules.settings.sample_size)[
        ["schema", "column", "check", "failure_case"]
    ].to_dict("records")
    return EngineResult(
        clean,
        order_lines,
        quarantine,
        held.reset_index(drop=True),
        catalog,
        _rule_counts(findings, decisions, lines, marks),
        fail_counts,
        samples,
        conservation,
        rules.version,
    )


def _explanations(findings, failures, lines, marks) -> dict:
    """Per row: repairs (every error finding, with before/after), flags (warnings and info, one
    entry per rule and field; line flags are summarised per rule with a count), contract."""
    out: dict[int, dict] = {}
    line_flag = (findings["pos"] >= 0) & (findings["severity"] != "error")
    each = findings[~line_flag]
    cols = [
        each[c].tolist()
        for c in (
            "row",
            "rule_id",
            "field",
            "before",
            "after",
            "confidence",
            "repaired",
            "severity",
        )
    ]
    for row, rule_id, field, before, after, conf, repaired, severity in zip(*cols, strict=True):
        entry = out.get(row)
        if entry is None:
            entry = out[row] = {"repairs": [], "flags": [], "contract": []}
        if severity == "error":
            entry["repairs"].append(
                {
                    "rule_id": rule_id,
                    "field": field,
                    "before": _jsonable(before),
                    "after": _jsonable(after) if repaired else None,
                    "confidence": round(float(conf), 4) if repaired else None,
                }
            )
        else:
            entry["flags"].append({"rule_id": rule_id, "field": field, "severity": severity})
    # Line flags are summarised per record: one entry per rule and field, with a line count.
    counts = findings[line_flag].groupby(["row", "rule_id", "name", "severity"]).size()
    summary = [
        (row, rule_id, name, severity, count)
        for (row, rule_id, name, severity), count in counts.items()
    ]
    for mark in marks:
        per_row = lines.loc[mark.index, "_row"].value_counts(sort=False)
        summary += [
            (row, mark.rule_id, mark.name, mark.severity, count) for row, count in per_row.items()
        ]
    for row, rule_id, name, severity, count in summary:
        entry = out.setdefault(row, {"repairs": [], "flags": [], "contract": []})
        entry["flags"].append(
            {
                "rule_id": rule_id,
                "field": f"lines[*].{name}",
                "severity": severity,
                "lines": int(count),
            }
        )
    cols = [failures[c].tolist() for c in ("row", "schema", "column", "check", "failure_case")]
    for row, schema, column_name, check, case in zip(*cols, strict=True):
        entry = out.setdefault(row, {"repairs": [], "flags": [], "contract": []})
        entry["contract"].append(
            {"schema": schema, "column": column_name, "check": check, "failure_case": case}
        )
    return out


def _jsonable(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + f"...(+{len(value) - 200} chars)"
    if isinstance(value, (list, dict)):
        text = json.dumps(value, default=str)
        return value if len(text) <= 500 else text[:500] + "..."
    return value


def _clean(records, parsed, events, findings, decisions, explained, rules) -> pd.DataFrame:
    rows = decisions.index
    repaired = findings[findings["repaired"].astype(bool)]
    payloads = [parsed.texts[i] for i in rows]
    fixed_rows = set(repaired["row"]) & set(rows)
    events_fixed = {i: dict(parsed.events[i]) for i in fixed_rows}
    copied: set = set()
    cols = [repaired[c].tolist() for c in ("row", "pos", "field", "after")]
    for row, pos, field, after in zip(*cols, strict=True):
        event = events_fixed.get(row)
        if event is None:
            continue
        if pos < 0:  # findings are in rule order: the last repair of a field is its value
            event[field] = _plain(after)
        else:
            if row not in copied:  # never write into the dicts the frames still share
                event["lines"] = [dict(line) for line in event["lines"]]
                copied.add(row)
            event["lines"][pos][field.split(".", 1)[1]] = _plain(after)
    position = {row: n for n, row in enumerate(rows)}
    for row, event in events_fixed.items():
        payloads[position[row]] = json.dumps(
            event, ensure_ascii=False, separators=(",", ":"), default=str
        )
    sub = events.loc[rows]
    empty: dict[str, list] = {"repairs": [], "flags": []}
    return pd.DataFrame(
        {
            "topic": records.loc[rows, "topic"].to_numpy(),
            "partition": records.loc[rows, "partition"].to_numpy(),
            "offset": records.loc[rows, "offset"].to_numpy(),
            "event_id": column(sub, "event_id").to_numpy(dtype=object),
            "event_type": column(sub, "_event_type").to_numpy(dtype=object),
            "event_time": to_utc(column(sub, "event_time")).to_numpy(),
            "customer_id": _text_or_none(column(sub, "customer_id")),
            "product_id": _text_or_none(column(sub, "product_id")),
            "payload": payloads,
            "score": decisions["score"].to_numpy(),
            "confidence": decisions["confidence"].to_numpy(),
            "decision": decisions["decision"].to_numpy(),
            "repairs": [json.dumps(explained.get(i, empty)["repairs"], default=str) for i in rows],
            "flags": [json.dumps(explained.get(i, empty)["flags"]) for i in rows],
            "rule_set_version": rules.version,
        }
    ).astype({"event_time": "datetime64[ns, UTC]"})


def _order_lines(events, lines, as_found, findings, decision, marks) -> pd.DataFrame:
    if lines.empty:
        return pd.DataFrame(columns=ORDER_LINE_COLUMNS)
    keep = lines["_row"].map(decision).isin(RELEASED).to_numpy()
    sub, found = lines[keep], as_found[keep]
    rows = sub["_row"].astype(int).tolist()
    quantity_found = found["quantity"]
    price_found = found["unit_price"]
    return pd.DataFrame(
        {
            "event_id": sub["event_id"].to_numpy(dtype=object),
            "order_id": events.loc[rows, "order_id"].to_numpy(dtype=object)
            if "order_id" in events
            else None,
            "line_id": np.array(
                [
                    None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                    for v in column(sub, "line_id").tolist()
                ],
                dtype=object,
            ),
            "product_id": _text_or_none(column(sub, "product_id")),
            "quantity_as_found": as_float(quantity_found).to_numpy(),
            "quantity_as_found_text": _text_or_none(quantity_found),
            "unit_price_as_found": as_float(price_found).to_numpy(),
            "unit_price_as_found_text": _text_or_none(price_found),
            "quantity": as_float(column(sub, "quantity")).to_numpy(),
            "unit_price": as_float(column(sub, "unit_price")).to_numpy(),
            "is_cancellation": (sub["_event_type"] == "order_cancelled").to_numpy(),
            "flags": _line_flags(findings[findings["line"] >= 0], marks, lines.index, keep),
        }
    )


def _line_flags(line_findings: pd.DataFrame, marks, index: pd.Index, keep) -> list[str]:
    """The rule ids fired on each line as JSON, via one bit per rule: lines share few sets."""
    fired = [
        pd.DataFrame(
            {
                "line": line_findings["line"].to_numpy(),
                "rule_id": line_findings["rule_id"].to_numpy(dtype=object),
            }
        )
    ]
    fired += [pd.DataFrame({"line": m.index.to_numpy(), "rule_id": m.rule_id}) for m in marks]
    fired = pd.concat(fired, ignore_index=True)
    rule_ids = pd.unique(fired["rule_id"])
    codes = pd.Index(rule_ids).get_indexer(fired["rule_id"])
    where = index.get_indexer(fired["line"])
    if len(rule_ids) < 63:
        bits = np.zeros(len(index), dtype=np.uint64)
        np.bitwise_or.at(bits, where, np.left_shift(np.uint64(1), codes.astype(np.uint64)))
        sets = bits.tolist()
    else:  # more rules than bits in a machine word: Python integers
        sets = [0] * len(index)
        for at, code in zip(where.tolist(), codes.tolist(), strict=True):
            sets[at] |= 1 << code
    memo: dict[int, str] = {}
    out = []
    for fired_set, kept in zip(sets, keep.tolist(), strict=True):
        if not kept:
            continue
        text = memo.get(fired_set)
        if text is None:
            text = memo[fired_set] = json.dumps(
                [r for n, r in enumerate(rule_ids) if fired_set >> n & 1]
            )
        out.append(text)
    return out


ORDER_LINE_COLUMNS = [
    "event_id",
    "order_id",
    "line_id",
    "product_id",
    "quantity_as_found",
    "quantity_as_found_text",
    "unit_price_as_found",
    "unit_price_as_found_text",
    "quantity",
    "unit_price",
    "is_cancellation",
    "flags",
]


def _quarantine(records, parsed, decisions, explained, now, rules) -> pd.DataFrame:
    rows = decisions.index
    stored = [payload_text(records.at[i, "value"], parsed.texts[i]) for i in rows]
    return pd.DataFrame(
        {
            "topic": records.loc[rows, "topic"].to_numpy(),
            "partition": records.loc[rows, "partition"].to_numpy(),
            "offset": records.loc[rows, "offset"].to_numpy(),
            "key": records.loc[rows, "key"].to_numpy(dtype=object),
            "event_id": [
                parsed.event_ids[i] if isinstance(parsed.event_ids[i], str) else None for i in rows
            ],
            "event_type": [
                parsed.event_types[i] if isinstance(parsed.event_types[i], str) else None
                for i in rows
            ],
            "payload": [s[0] for s in stored],
            "payload_encoding": [s[1] for s in stored],
            "reasons": [json.dumps(r) for r in decisions["reasons"]],
            "explanation": [json.dumps(explained.get(i, {}), default=str) for i in rows],
            "score": decisions["score"].to_numpy(dtype=float),
            "confidence": decisions["confidence"].to_numpy(dtype=float),
            "rule_set_version": rules.version,
            "quarantined_at": now,
        }
    )


def _rule_counts(findings, decisions, lines, marks) -> pd.DataFrame:
    fired = pd.concat(
        [findings[["row", "rule_id"]]]
        + [
            pd.DataFrame({"row": lines.loc[m.index, "_row"].to_numpy(), "rule_id": m.rule_id})
            for m in marks
        ],
        ignore_index=True,
    ).drop_duplicates()
    fired = fired.assign(decision=fired["row"].map(decisions["decision"]))
    early = decisions["reasons"].explode().dropna()
    extra = pd.DataFrame({"row": early.index, "rule_id": early.to_numpy()})
    extra = extra[~extra["rule_id"].isin(set(fired["rule_id"]))]
    extra = extra.assign(decision=extra["row"].map(decisions["decision"]))
    both = pd.concat([fired, extra], ignore_index=True).drop_duplicates(["row", "rule_id"])
    return (
        both.groupby(["rule_id", "decision"])
        .size()
        .rename("records")
        .reset_index()
        .sort_values("records", ascending=False, ignore_index=True)
    )


def _text_or_none(values: pd.Series) -> np.ndarray:
    return np.array([v if isinstance(v, str) else None for v in values], dtype=object)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
