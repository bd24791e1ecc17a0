"""`pulsemart quarantine list|replay` and `pulsemart dq evaluate`."""

from __future__ import annotations

import json

import click

from pulsemart.config import load_settings
from pulsemart.local.processes import ServiceError
from pulsemart.store.db import DatabaseError, connect_migrated


def _connect():
    try:
        return connect_migrated(load_settings())
    except (DatabaseError, ServiceError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("quarantine")
def quarantine() -> None:
    """Inspect quarantined records and release them after a rule change."""


@quarantine.command("list")
@click.option("--reason", help="Only records quarantined for this reason (e.g. malformed_json).")
@click.option("--limit", default=20, show_default=True)
def quarantine_list(reason: str | None, limit: int) -> None:
    """Open quarantine entries, newest first, with a count per reason."""
    with _connect() as conn:
        counts = conn.execute(
            "select reason, count(*) from quality.quarantine, jsonb_array_elements_text(reasons) reason "
            "where released_at is null group by 1 order by 2 desc"
        ).fetchall()
        rows = conn.execute(
            'select topic, "partition", "offset", event_type, reasons, left(payload, 80) '
            "from quality.quarantine where released_at is null and (%s::text is null or reasons ? %s::text) "
            'order by quarantined_at desc, topic, "partition", "offset" limit %s',
            (reason, reason, limit),
        ).fetchall()
    click.echo("open quarantine by reason:")
    for name, count in counts:
        click.echo(f"  {count:>8,}  {name}")
    for topic, partition, offset, event_type, reasons, payload in rows:
        click.echo(
            f"{topic}[{partition}]@{offset}  {event_type or '?':<20} {','.join(reasons)}  {payload!r}"
        )


@quarantine.command("replay")
@click.option("--reason", help="Only re-decide records quarantined for this reason.")
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Rule file to decide with (default: the packaged rule set).",
)
def quarantine_replay(reason: str | None, rules_path: str | None) -> None:
    """Decide open quarantine entries again; release those the rules now accept or fix."""
    from pulsemart.quality import RuleSetError, load_rules
    from pulsemart.store.release import replay_quarantine

    try:
        rules = load_rules(rules_path)
    except RuleSetError as exc:
        raise click.ClickException(f"{rules_path}: {exc}") from exc
    with _connect() as conn:
        report = replay_quarantine(conn, rules, reason)
    click.echo(
        f"rule set {report.rule_set_version}: {report.considered} considered, "
        f"{report.released} released, {report.still_quarantined} still quarantined"
    )


@click.group("dq")
def dq() -> None:
    """Data-quality reports."""


@dq.command("evaluate")
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Truth file written by `pulsemart simulate --truth`.",
)
def dq_evaluate(truth_path: str) -> None:
    """Score the stored decisions and repairs against the simulator's truth file."""
    from pulsemart.quality.evaluate import evaluate, load_truth
    from pulsemart.store.quality import query_frame

    with _connect() as conn:
        clean = query_frame(
            conn,
            "select event_id, confidence, repairs::text as repairs, flags::text as flags, "
            "decision from quality.events_clean",
        )
        quarantined = query_frame(
            conn,
            "select event_id, reasons::text as reasons from quality.quarantine "
            "where released_at is null",
        )
        held = query_frame(conn, "select event_id from quality.held")
    metrics = evaluate(clean, quarantined, held, load_truth(truth_path))
    click.echo(json.dumps(metrics, indent=2, default=str))
