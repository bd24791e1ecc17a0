"""`trace_line`: everything pulsemart knows about one order line, source to datamart.

Each step is one bound query keyed by the step before it (Kafka coordinates, then batch ids),
so the trace shows what the tables hold, not what the code would have done. A line id is unique
for replayed files (`<file stem>:<row>`); a simulated order numbers its lines from 1, so the
same id can name lines of several orders: `order_id` narrows it down, and every match is traced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row

LINES = """
    select l.topic, l."partition", l."offset", l.event_id, l.order_id, l.line_id, l.product_id,
           l.quantity_as_found, l.quantity_as_found_text, l.unit_price_as_found,
           l.unit_price_as_found_text, l.quantity, l.unit_price, l.is_cancellation, l.flags,
           'released' as state
    from quality.order_lines_clean l
    where l.line_id = %(line_id)s and (%(order_id)s::text is null or l.order_id = %(order_id)s)
    union all
    select q.topic, q."partition", q."offset", q.event_id, null, q.line_id, q.product_id,
           null, q.quantity::text, null, q.unit_price::text, null, null, null, null, 'quarantined'
    from quality.quarantined_lines q
    where q.line_id = %(line_id)s
    order by 1, 2, 3
"""
RAW = """
    select r.key, length(r.value) as value_bytes, r.kafka_timestamp, r.ingested_at, r.batch_id,
           convert_from(r.value, 'UTF8')::jsonb ->> 'source' as source,
           convert_from(r.value, 'UTF8')::jsonb ->> 'order_id' as order_id,
           b.start_offset, b.next_offset, b.records as batch_records, b.run_id as dagster_run_id
    from raw.events r left join ingest.batches b using (batch_id)
    where r.topic = %(topic)s and r."partition" = %(partition)s and r."offset" = %(offset)s
"""
DECISION = """
    select e.event_type, e.decision, e.score, e.confidence, e.repairs, e.flags, e.rule_set_version,
           e.quality_batch_id, e.decided_at, b.run_id as dagster_run_id
    from quality.events_clean e left join quality.batches b using (quality_batch_id)
    where e.topic = %(topic)s and e."partition" = %(partition)s and e."offset" = %(offset)s
"""
QUARANTINE = """
    select q.reasons, q.score, q.confidence, q.rule_set_version, q.quarantined_at,
           q.quality_batch_id, q.released_at, q.released_by_rule_set_version,
           b.run_id as dagster_run_id
    from quality.quarantine q left join quality.batches b using (quality_batch_id)
    where q.topic = %(topic)s and q."partition" = %(partition)s and q."offset" = %(offset)s
"""
RELEASE_AUDIT = """
    select at, actor, details from governance.audit_log
    where action = 'quarantine_release' and subject = %(subject)s order by at
"""
# The marts that hold the line: its own fact row, and the rows it was summed into.
MARTS = {
    "marts.fct_order_lines": """
        select order_line_key, order_date, customer_key is not null as has_customer, line_amount,
               dq_decision, dq_confidence
        from marts.fct_order_lines
        where source_topic = %(topic)s and source_partition = %(partition)s
          and source_offset = %(offset)s and line_id = %(line_id)s""",
    "marts.agg_sales_daily": """
        select a.order_date, a.country, a.category, a.net_revenue
        from marts.agg_sales_daily a
        join marts.fct_order_lines f on a.order_date = f.order_date
          and a.country = coalesce(f.country, 'unknown')
        join marts.dim_product p on p.product_key = f.product_key and p.is_current
          and a.category = coalesce(p.category, 'uncategorized')
        where f.source_topic = %(topic)s and f.source_partition = %(partition)s
          and f.source_offset = %(offset)s and f.line_id = %(line_id)s""",
    "intermediate.int_order_lines_netted": """
        select n.order_id, n.product_id, n.ordered_quantity, n.cancelled_quantity, n.net_quantity
        from intermediate.int_order_lines_netted n
        where n.product_id = %(product_id)s and n.order_id = %(order_id)s""",
}


@dataclass
class LineTrace:
    line: dict
    raw: dict | None = None
    decision: dict | None = None
    quarantine: dict | None = None
    releases: list[dict] = field(default_factory=list)
    marts: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def coordinates(self) -> str:
        return f"{self.line['topic']}[{self.line['partition']}]@{self.line['offset']}"


def trace_line(
    conn: psycopg.Connection, line_id: str, order_id: str | None = None
) -> list[LineTrace]:
    """Every stored line with this id (and order), each with its full path."""
    with conn.cursor(row_factory=dict_row) as cur:
        lines = cur.execute(LINES, {"line_id": line_id, "order_id": order_id}).fetchall()
        traces = []
        for line in lines:
            where = {
                "topic": line["topic"],
                "partition": line["partition"],
                "offset": line["offset"],
            }
            trace = LineTrace(line=line)
            trace.raw = cur.execute(RAW, where).fetchone()
            trace.decision = cur.execute(DECISION, where).fetchone()
            trace.quarantine = cur.execute(QUARANTINE, where).fetchone()
            trace.releases = cur.execute(RELEASE_AUDIT, {"subject": trace.coordinates}).fetchall()
            if line["state"] == "released":
                trace.marts = _marts(
                    conn,
                    {
                        **where,
                        "line_id": line["line_id"],
                        "product_id": line["product_id"],
                        "order_id": line["order_id"],
                    },
                )
            traces.append(trace)
    conn.rollback()
    return traces


def _marts(conn: psycopg.Connection, params: dict) -> dict[str, list[dict]]:
    found = {}
    for name, sql in MARTS.items():
        try:
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                found[name] = cur.execute(sql, params).fetchall()
        except psycopg.errors.UndefinedTable:
            found[name] = []  # the datamart has not been built yet
    return found
