"""`pulsemart replay PATH`: produce a real shop's transaction file as order and catalog events."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from tqdm import tqdm

from pulsemart.config import SettingsError, load_settings
from pulsemart.stream.producer import ProduceError, make_producer, produce_events
from pulsemart.stream.replay import ReplayInputError, ReplaySummary, build_events, load_transactions


@click.command("replay")
# No exists=True: the loader's ReplayInputError says what is wrong in the same words as for
# every other bad input.
@click.argument("path", type=click.Path(path_type=Path, dir_okay=True))
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Events per second (default: as fast as the broker acknowledges).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help="Replay at most this many orders and cancellations (products are extra).",
)
def replay(path: Path, rate: float | None, limit: int | None) -> None:
    """Replay an Online Retail transaction file (CSV, .xlsx or Parquet) to Kafka.

    Each invoice becomes an order_placed or order_cancelled event on shop.events, each product
    a product_upserted event on shop.catalog, with values passed through as found.
    """
    started = time.monotonic()
    try:
        # Read the file before connecting, so a bad file fails fast even with no broker.
        frame = load_transactions(path)
        settings = load_settings()
    except (ReplayInputError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None

    summary = ReplaySummary()
    events = build_events(frame, path.stem, limit=limit, summary=summary)
    try:
        producer = make_producer(settings)
        try:
            with tqdm(desc=f"replay {path.name}", unit="event", file=sys.stderr) as bar:
                produce_events(producer, events, rate=rate, on_progress=bar.update)
        finally:
            producer.close(timeout=10)
    except ProduceError as exc:
        raise click.ClickException(str(exc)) from None

    elapsed = time.monotonic() - started
    click.echo(
        f"replayed {path.name}: {summary.orders} orders, {summary.cancellations} cancellations, "
        f"{summary.products} products, {summary.lines} lines "
        f"({summary.events} events in {elapsed:.1f}s)"
    )
