"""The contract gate on released events: every accepted or fixed event must satisfy its
Pandera contract. The engine already quarantines rows that fail; this re-check of what was
actually stored is what the blocking asset check runs, so a defect in a repair can never
slip a broken event downstream."""

from __future__ import annotations

import json

import pandas as pd

from pulsemart.contracts import CONTRACTS, events_frame
from pulsemart.quality.contract_check import check_events


def contract_failures(
    payloads: list[str], sample_size: int = 5
) -> tuple[dict[str, int], list[dict]]:
    """Failure counts by `<schema>:<column>:<check>` and a few samples, over stored payloads.

    Events are checked the way the engine checks them: each type against its contract's
    declared fields. (Order lines carry per-line exemptions that rules grant, such as a fee
    line's price; the engine validates them with those exemptions before release.)
    """
    events = events_frame(json.loads(p) for p in payloads)
    if events.empty:
        return {}, []
    events["_event_type"] = events["event_type"]
    unknown = ~events["_event_type"].isin(list(CONTRACTS))
    counts: dict[str, int] = {}
    if unknown.any():
        counts["envelope:event_type:known"] = int(unknown.sum())
    failures = check_events(events[~unknown])
    for (schema, column, check), n in (
        failures.groupby(["schema", "column", "check"], dropna=False).size().items()
    ):
        counts[f"{schema}:{column}:{check}"] = int(n)
    samples = failures.head(sample_size)[["schema", "column", "check", "failure_case"]].astype(str)
    return counts, samples.to_dict("records")


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
                          where released_at is null  -- a released record lives on in events_clean
                union all select topic, "partition", "offset" from quality.held
            ) d group by 1, 2
        )
        select d.topic, d."partition", d.raw_records, coalesce(x.decisions, 0), coalesce(x.distinct_offsets, 0)
        from decided d left join decisions x using (topic, "partition")
        where d.raw_records <> coalesce(x.decisions, 0) or coalesce(x.decisions, 0) <> coalesce(x.distinct_offsets, 0)
    """).fetchall()
    return pd.DataFrame(
        rows, columns=["topic", "partition", "raw_records", "decisions", "distinct_offsets"]
    )
