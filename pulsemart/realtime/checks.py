"""The conservation check over the ranges a worker landed: each raw record of the ranges that
is decided has exactly one decision (clean, quarantined or held).

The sensor lane's check (`pulsemart.store.contract_gate.conservation_gaps`) scans every
decided record; a worker reporting every few seconds checks only what it landed since its
last report, by primary key.
"""

from __future__ import annotations

import psycopg

_GAPS_SQL = """
with ranges as (
    select * from unnest(%(topics)s::text[], %(partitions)s::int[], %(starts)s::bigint[], %(ends)s::bigint[])
        as r(topic, "partition", start_offset, end_offset)
), decided as (
    select r.topic, r."partition", r."offset"
    from ranges g
    join raw.events r on r.topic = g.topic and r."partition" = g."partition"
         and r."offset" >= g.start_offset and r."offset" < g.end_offset
    join quality.progress p on p.topic = r.topic and p."partition" = r."partition"
    where r."offset" < p.next_offset
), counted as (
    select d.topic, d."partition", d."offset",
           (select count(*) from quality.events_clean c
             where (c.topic, c."partition", c."offset") = (d.topic, d."partition", d."offset"))
         + (select count(*) from quality.quarantine q
             where (q.topic, q."partition", q."offset") = (d.topic, d."partition", d."offset")
               and q.released_at is null)
         + (select count(*) from quality.held h
             where (h.topic, h."partition", h."offset") = (d.topic, d."partition", d."offset"))
           as decisions
    from decided d
)
select topic, "partition", count(*) filter (where decisions <> 1)
from counted group by 1, 2 having count(*) filter (where decisions <> 1) > 0
"""


def conservation_gaps_in(conn: psycopg.Connection, ranges: dict) -> list[dict]:
    """Partitions with records in `ranges` ((topic, partition) -> [start, end)) that have no
    decision or more than one; empty when every decided record balances."""
    if not ranges:
        return []
    keys = sorted(ranges)
    rows = conn.execute(
        _GAPS_SQL,
        {
            "topics": [t for t, _ in keys],
            "partitions": [p for _, p in keys],
            "starts": [ranges[k][0] for k in keys],
            "ends": [ranges[k][1] for k in keys],
        },
    ).fetchall()
    conn.commit()
    return [{"topic": t, "partition": p, "records_out_of_balance": n} for t, p, n in rows]
