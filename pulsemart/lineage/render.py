"""Text rendering of a line trace, step by step, for `pulsemart trace line`."""

from __future__ import annotations

import json

from pulsemart.lineage.trace import LineTrace


def _source(trace: LineTrace) -> str:
    line_id = trace.line["line_id"]
    raw = trace.raw or {}
    if raw.get("source") == "replay" and ":" in line_id:
        stem, row = line_id.rsplit(":", 1)
        return f"file {stem} (Online Retail layout), data row {row} (0-based)"
    return f"event from {raw.get('source') or 'unknown source'}, line {line_id} of its order"


def _text(key: bytes | None) -> str | None:
    return None if key is None else bytes(key).decode("utf-8", errors="replace")


def render(trace: LineTrace) -> str:
    line, raw = trace.line, trace.raw or {}
    out = [
        (
            f"line {line['line_id']}  order {line.get('order_id') or raw.get('order_id')}  "
            f"product {line['product_id']}  ({line['state']})"
        ),
        f"  1. source      {_source(trace)}",
        (
            f"  2. kafka       {trace.coordinates}  key={_text(raw.get('key'))!r}  "
            f"{raw.get('value_bytes')} bytes  kafka time {raw.get('kafka_timestamp')}"
        ),
    ]
    if raw:
        out.append(
            f"  3. raw         raw.events, ingest batch {raw['batch_id']} "
            f"(offsets {raw['start_offset']}..{raw['next_offset']}, {raw['batch_records']} records) "
            f"at {raw['ingested_at']}, Dagster run {raw['dagster_run_id'] or '-'}"
        )
    else:
        out.append("  3. raw         not in raw.events (was the topic reset?)")
    out.append(
        f"     as found    quantity {line.get('quantity_as_found_text') or line.get('quantity_as_found')}"
        f", unit price {line.get('unit_price_as_found_text') or line.get('unit_price_as_found')}"
    )
    if trace.quarantine:
        q = trace.quarantine
        out.append(
            f"  4. quarantined {q['quarantined_at']} by rules {q['rule_set_version']} "
            f"(quality batch {q['quality_batch_id']}, run {q['dagster_run_id'] or '-'}): "
            f"{', '.join(q['reasons'])}; score {q['score']:.3f}, confidence {q['confidence']:.3f}"
        )
        for release in trace.releases:
            out.append(
                f"     released    {release['at']} by {release['actor']}: "
                f"{json.dumps(release['details'], sort_keys=True)}"
            )
    if trace.decision:
        d = trace.decision
        out.append(
            f"  5. decision    {d['decision']} by rules {d['rule_set_version']}, score {d['score']:.3f}, "
            f"confidence {d['confidence']:.3f}, quality batch {d['quality_batch_id']} "
            f"(Dagster run {d['dagster_run_id'] or '-'}) at {d['decided_at']}"
        )
        for repair in d["repairs"] or []:
            out.append(
                f"     repair      {repair.get('rule_id')}: {repair.get('field')} "
                f"{repair.get('before')!r} -> {repair.get('after')!r} (confidence {repair.get('confidence')})"
            )
        if line["state"] == "released":
            out.append(
                f"     as decided  quantity {line['quantity']}, unit price {line['unit_price']}"
                f"{', cancellation' if line['is_cancellation'] else ''}"
            )
    for name, rows in trace.marts.items():
        shown = (
            "; ".join(json.dumps(r, default=str, sort_keys=True) for r in rows) or "not built yet"
        )
        out.append(f"  6. dbt         {name}: {shown}")
    return "\n".join(out)
