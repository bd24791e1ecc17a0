"""The contract gate on released events: every accepted or fixed event must satisfy its
Pandera contract. The engine already quarantines rows that fail; this re-check of what was
actually stored is what the blocking asset check runs, so a defect in a repair can never
slip a broken event downstream."""

from __future__ import annotations

import json

import pandas as pd
import pandera.errors as pa_errors

from pulsemart.contracts import CONTRACTS, events_frame, order_lines_schema, order_lines_frame, pandera_schema


def contract_failures(payloads: list[str], sample_size: int = 5) -> tuple[dict[str, int], list[dict]]:
    """Failure counts by `<schema>:<column>:<check>` and a few samples, over stored payloads."""
    events = [json.loads(p) for p in payloads]
    counts: dict[str, int] = {}
    samples: list[dict] = []
    by_type: dict[str, list[dict]] = {}
    for event in events:
        by_type.setdefault(event.get("event_type"), []).append(event)
    for event_type, group in by_type.items():
        if event_type not in CONTRACTS:
            counts["envelope:event_type:known"] = counts.get("envelope:event_type:known", 0) + len(group)
            continue
        checks = [(event_type, pandera_schema(event_type), events_frame(group))]
        if any(f.dtype == "lines" for f in CONTRACTS[event_type].fields):
            checks.append((f"{event_type}.lines", order_lines_schema(event_type), order_lines_frame(group)))
        for name, schema, frame in checks:
            try:
                schema.validate(frame, lazy=True)
            except pa_errors.SchemaErrors as error:
                cases = error.failure_cases
                for (column, check), n in cases.groupby(["column", "check"], dropna=False).size().items():
                    key = f"{name}:{column}:{check}"
                    counts[key] = counts.get(key, 0) + int(n)
                samples.extend(cases.head(sample_size)[["column", "check", "failure_case"]]
                               .astype(str).assign(schema=name).to_dict("records"))
    return counts, samples[:sample_size]


def conservation_gaps(conn) -> pd.DataFrame:
    """Partitions where decided raw records and decisions disagree (should be none).

    Every raw record below `quality.progress` must appear exactly once across
    events_clean, quarantine and held.
    """
    rows = conn.execute("""
        with decided as (
            select r.topic, r."partition", count(*) as raw_records
            from raw.events r join quality.progress p using (topic, "partition")
            where r."offset" < p.next_offset
            group by 1, 2
        ), decisions as (
            select topic, "partition", count(*) as decisions, count(distinct "offset") as distinct_offsets
            from (
                select topic, "partition", "offset" from quality.events_clean
                union all select topic, "partition", "offset" from quality.quarantine
                union all select topic, "partition", "offset" from quality.held
            ) d group by 1, 2
        )
        select d.topic, d."partition", d.raw_records, coalesce(x.decisions, 0), coalesce(x.distinct_offsets, 0)
        from decided d left join decisions x using (topic, "partition")
        where d.raw_records <> coalesce(x.decisions, 0) or coalesce(x.decisions, 0) <> coalesce(x.distinct_offsets, 0)
    """).fetchall()
    return pd.DataFrame(rows, columns=["topic", "partition", "raw_records", "decisions", "distinct_offsets"])
