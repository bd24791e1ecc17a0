"""`pulsemart stream`: a real-time worker; `--status` shows the lane instead of joining it."""

from __future__ import annotations

import logging

import click

from pulsemart.config import TOPIC_PARTITIONS, load_settings


@click.command("stream")
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="Show the workers started from this home, partitions owned, lag and last commit.",
)
@click.option(
    "--dagster-url",
    default=None,
    help="Dagster webserver to report to (default: PULSEMART_DAGSTER_URL; none: not reported).",
)
def stream(show_status: bool, dagster_url: str | None) -> None:
    """Run a real-time worker: joins the consumer group pulsemart-realtime and lands, decides
    and serves each micro-batch in one transaction. Run several, anywhere, to share the
    partitions; SIGTERM or Ctrl-C stops one within seconds."""
    settings = load_settings()
    if show_status:
        click.echo(_status(settings))
        return
    if dagster_url:
        settings = settings.model_copy(update={"dagster_url": dagster_url.rstrip("/")})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per report request is noise
    from pulsemart.realtime.worker import Worker

    Worker(settings).run()


def _status(settings) -> str:
    from pulsemart.realtime.status import latest_session, partition_view, read_statuses, render
    from pulsemart.store.db import connect_migrated
    from pulsemart.stream.reader import ReadError, end_offsets, make_consumer

    with connect_migrated(settings) as conn:
        partitions = partition_view(conn)
        session = latest_session(conn)
    ends: dict = {}
    try:
        consumer = make_consumer(settings, request_timeout_s=5)
        try:
            for topic in TOPIC_PARTITIONS:
                ends.update({(topic, p): o for p, o in end_offsets(consumer, topic).items()})
        finally:
            consumer.close()
    except ReadError as exc:
        click.echo(f"warning: no end offsets ({exc})", err=True)
    return render(read_statuses(settings), partitions, ends, session)
