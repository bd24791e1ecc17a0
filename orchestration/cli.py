"""Commands that drive Dagster jobs, registered into the `pulsemart` command line through the
`pulsemart.commands` entry points (pyproject.toml), so the core CLI never imports Dagster.

`pulsemart ingest`: the sensor's ingest job, in-process, until caught up; or a Kappa reset.
"""

from __future__ import annotations

import signal
import sys
import time

import click

from orchestration.interrupts import record_stop_signals
from pulsemart.config import TOPIC_PARTITIONS, load_settings
from pulsemart.store.db import DatabaseError
from pulsemart.store.reset import ResetRefused
from pulsemart.stream.reader import ReadError


@click.command("ingest")
@click.option("--until-caught-up", is_flag=True, help="Run batches until no partition lags.")
@click.option(
    "--topic",
    "topics",
    multiple=True,
    type=click.Choice(sorted(TOPIC_PARTITIONS)),
    help="Limit to these topics (default: all).",
)
@click.option(
    "--reset-to",
    type=click.Choice(["earliest"]),
    help="Rebuild the store from the stream: drop the topics' raw rows and rewind offsets.",
)
@click.option("--yes", is_flag=True, help="Do not ask before --reset-to deletes raw rows.")
@click.option(
    "--decide/--no-decide",
    default=True,
    show_default=True,
    help="After landing, run the quality job over what landed.",
)
def ingest(
    until_caught_up: bool, topics: tuple[str, ...], reset_to: str | None, yes: bool, decide: bool
) -> None:
    """Ingest the shop topics into raw.events, exactly once."""
    settings = load_settings()
    chosen = list(topics or TOPIC_PARTITIONS)
    if not until_caught_up and not reset_to:
        raise click.UsageError("say --until-caught-up, --reset-to earliest, or both")
    # SIGTERM (a service manager, `kill`) stops the run as Ctrl-C does: through the cleanup
    # paths, so the batch in flight rolls back and no worker is left behind. SIGINT is set
    # too: a shell starting this in the background hands it SIGINT ignored, and Python then
    # installs no handler of its own.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    record_stop_signals()
    try:
        if reset_to:
            _reset(settings, chosen, yes)
        if until_caught_up:
            _catch_up(settings, chosen, decide)
    except (ReadError, DatabaseError, ResetRefused, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    except BaseException as exc:
        if not _is_interrupt(exc):
            raise
        click.echo("interrupted: the batch in flight was rolled back; run again to go on", err=True)
        sys.exit(130)


def _is_interrupt(exc: BaseException) -> bool:
    # Inside a Dagster run a signal surfaces as Dagster's own interruption error, named here
    # rather than imported so this command loads no Dagster before it needs to.
    return (
        isinstance(exc, KeyboardInterrupt)
        or type(exc).__name__ == "DagsterExecutionInterruptedError"
    )


def _reset(settings, topics: list[str], yes: bool) -> None:
    from pulsemart.datamart.project import incremental_relations
    from pulsemart.store.db import connect_migrated
    from pulsemart.stream.rewind import reset_to_earliest

    if not yes:
        click.confirm(
            f"Delete the raw rows of {', '.join(topics)} and re-ingest from the stream?", abort=True
        )
    derived = incremental_relations()
    with connect_migrated(settings) as conn:
        for topic in topics:
            deleted = reset_to_earliest(conn, settings, topic, derived)
            click.echo(
                f"{topic}: {deleted} raw rows deleted, offsets rewound to the stream's beginning"
            )


def _catch_up(settings, topics: list[str], decide: bool) -> None:
    from orchestration.catch_up import catch_up
    from orchestration.streaming import defs

    started = time.perf_counter()

    def show(batch: dict) -> None:
        if batch["records"]:
            click.echo(
                f"  {batch['topic']}[{batch['partition']}] {batch['start_offset']}..{batch['next_offset']} "
                f"{batch['records']} records",
                err=True,
            )

    report = catch_up(settings, defs, topics, on_batch=show, decide=decide, serve=decide)
    landing = report.ingest_seconds
    rate = report.records / landing if landing else 0.0
    click.echo(
        f"caught up: {report.records} records in {report.batches} batches, "
        f"{landing:.1f} s ({rate:,.0f} records/s)"
    )
    if report.quality:
        q = report.quality
        click.echo(
            f"decided: {q['new_records']} new records; {q['accepted']} accepted, {q['fixed']} fixed, "
            f"{q['quarantined']} quarantined, {q['held']} held for the catalog, in "
            f"{time.perf_counter() - started - landing:.1f} s"
        )
