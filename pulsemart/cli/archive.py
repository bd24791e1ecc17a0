"""`pulsemart archive status|retry`: the Parquet archive of ingest batches and its backlog."""

from __future__ import annotations

import click

from pulsemart.cloud.objectstore import object_store
from pulsemart.config import load_settings
from pulsemart.store.db import connect_migrated
from pulsemart.stream.archive import ArchiveOutcome, retry_owed


@click.group()
def archive() -> None:
    """The lake copy of raw.events: one Parquet object per ingest batch (docs/ingestion.md)."""


def _counts(conn) -> str:
    with conn.transaction():
        counts = conn.execute(
            "select status, count(*) from ingest.archive_log group by status order by status"
        ).fetchall()
    return ", ".join(f"{status} {n}" for status, n in counts) or "no batches"


@archive.command()
def status() -> None:
    """Batches archived, pending, failed or gone (raw rows deleted by a reset)."""
    settings = load_settings()
    with connect_migrated(settings) as conn:
        click.echo(f"archive ({settings.profile}): {_counts(conn)}")


@archive.command()
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Copy at most this many batches."
)
def retry(limit: int | None) -> None:
    """Copy the batches the archive still owes (failed or left pending), oldest first."""
    settings = load_settings()
    store = object_store(settings)
    with connect_migrated(settings) as conn:
        outcomes: list[ArchiveOutcome] = []
        while limit is None or len(outcomes) < limit:
            step = retry_owed(
                conn, store, 100 if limit is None else min(100, limit - len(outcomes))
            )
            outcomes += step
            # Stop at a failure, and when nothing moved (the rest belongs to a running batch).
            if (
                not any(o.status in ("archived", "gone") for o in step)
                or step[-1].status == "failed"
            ):
                break
        for outcome in outcomes:
            # Every failure, and every batch when there are few; a long retry shows its count.
            if outcome.status == "failed" or len(outcomes) <= 20:
                click.echo(
                    f"batch {outcome.batch_id}: {outcome.status} {outcome.uri or outcome.error or ''}"
                )
        click.echo(f"{len(outcomes)} batches tried")
        click.echo(f"archive ({settings.profile}): {_counts(conn)}")
    if any(o.status == "failed" for o in outcomes):
        raise click.ClickException("some batches could not be archived; see the errors above")
