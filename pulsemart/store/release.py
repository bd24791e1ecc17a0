"""Quarantine replay: decide quarantined records again under the current rules.

Records the rules now accept or fix are released exactly once: copied to the clean tables and
marked released in the same transaction, each release written to `governance.audit_log` with
the rule-set version. The rest stay in quarantine as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg

from pulsemart.quality import RuleSet, load_rules, run_batch
from pulsemart.store import quality as store
from pulsemart.store.rows import one_row


@dataclass(frozen=True)
class ReleaseReport:
    considered: int
    released: int
    still_quarantined: int
    rule_set_version: str


def replay_quarantine(
    conn: psycopg.Connection,
    rules: RuleSet | None = None,
    reason: str | None = None,
    actor: str = "pulsemart quarantine replay",
) -> ReleaseReport:
    rules = rules or load_rules()
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (store.DECIDE_LOCK,))
        raw = store.raw_records(
            conn,
            """
            select r.topic, r."partition", r."offset", r.key, r.value
            from quality.quarantine q join raw.events r using (topic, "partition", "offset")
            where q.released_at is null and (%s::text is null or q.reasons ? %s::text)
            order by r.topic <> 'shop.catalog', r.topic, r."partition", r."offset"
        """,
            (reason, reason),
        )
        if raw.empty:
            return ReleaseReport(0, 0, 0, rules.version)
        result = run_batch(
            raw,
            store.load_catalog(conn),
            store.seen_ids(conn, include_quarantine=False),
            rules=rules,
        )
        released = result.clean
        (batch_id,) = one_row(
            conn.execute(
                "insert into quality.batches (run_id, rule_set_version, records_in, accepted, fixed, "
                "quarantined, held, seconds) values (%s, %s, %s, %s, %s, %s, %s, 0) returning quality_batch_id",
                (
                    actor,
                    rules.version,
                    len(raw),
                    int((released["decision"] == "accepted").sum()),
                    int((released["decision"] == "fixed").sum()),
                    len(raw) - len(released),
                    0,
                ),
            )
        )
        store.copy_clean(conn, released, batch_id)
        store.copy_order_lines(conn, result.order_lines, released)
        with conn.cursor() as cur:
            cur.executemany(
                "update quality.quarantine set released_at = now(), released_by_rule_set_version = %s "
                'where topic = %s and "partition" = %s and "offset" = %s and released_at is null',
                [
                    (rules.version, r.topic, int(r.partition), int(r.offset))
                    for r in released.itertuples()
                ],
            )
            cur.executemany(
                "insert into governance.audit_log (actor, action, subject, details) values (%s, %s, %s, %s)",
                [
                    (
                        actor,
                        "quarantine_release",
                        f"{r.topic}[{r.partition}]@{r.offset}",
                        json.dumps(
                            {
                                "event_id": r.event_id,
                                "decision": r.decision,
                                "confidence": float(r.confidence),
                                "rule_set_version": rules.version,
                            }
                        ),
                    )
                    for r in released.itertuples()
                ],
            )
    return ReleaseReport(len(raw), len(released), len(raw) - len(released), rules.version)
