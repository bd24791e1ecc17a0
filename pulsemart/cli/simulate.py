"""`pulsemart simulate`: produce simulated shop events to Kafka, optionally with dirt."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from tqdm import tqdm

from pulsemart.config import load_settings
from pulsemart.stream.producer import ProducedEvent, ProduceError, make_producer, produce_events
from pulsemart.stream.simulator import SimulatedEvent, generate


def _parse_start_time(ctx, param, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2024-03-01T09:00:00Z")
    return moment


@click.command("simulate")
@click.option(
    "--events",
    "n_events",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Number of records to produce, catalog bootstrap and duplicates included.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Events per second (default: as fast as the broker takes them).",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Random seed; the same seed produces the same bytes.",
)
@click.option(
    "--dirty-rate",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Fraction of activity events to corrupt (0 to 1).",
)
@click.option(
    "--truth",
    "truth_path",
    default=None,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write one JSON line per corrupted record here.",
)
@click.option(
    "--start-time",
    callback=_parse_start_time,
    default=None,
    help="ISO-8601 time of the first event, with zone (default 2024-03-01T00:00:00Z).",
)
@click.option(
    "--live",
    is_flag=True,
    default=False,
    help="Date each event with the current time as it is produced (a live shop; "
    "`pulsemart up`'s trickle). Cannot be combined with --start-time.",
)
@click.option(
    "--react-to",
    "react_to",
    default=None,
    metavar="URL",
    help="The serving API's base URL (with PULSEMART_API_KEY): shoppers look at its "
    "recommendations and click what suits their tastes, echoing the recommendation_id. "
    "Needs --live. `pulsemart up` sets it.",
)
def simulate(n_events, rate, seed, dirty_rate, truth_path, start_time, live, react_to):
    """Produce simulated shop events to shop.events and shop.catalog."""
    if live and start_time is not None:
        raise click.UsageError("--live dates events now; leave out --start-time")
    if react_to and not live:
        raise click.UsageError("--react-to asks a live API: add --live")
    settings = load_settings()
    recommend = None
    if react_to:
        from pulsemart.stream.simulator.reactions import api_recommender

        key = settings.api_key.get_secret_value() if settings.api_key else None
        recommend = api_recommender(react_to, key)
    per_topic: Counter[str] = Counter()
    started = time.monotonic()
    with (
        _truth_writer(truth_path) as write_truth,
        tqdm(
            total=n_events, unit="ev", file=sys.stderr, disable=not sys.stderr.isatty()
        ) as progress,
    ):

        def records(events: Iterator[SimulatedEvent]) -> Iterator[ProducedEvent]:
            for event in events:
                per_topic[event.topic] += 1
                if event.truth is not None:
                    write_truth(event.truth)
                yield ProducedEvent(event.topic, event.key, event.value)

        try:
            producer = make_producer(settings)
            try:
                produced = produce_events(
                    producer,
                    records(
                        generate(
                            n_events,
                            seed,
                            dirty_rate,
                            start_time,
                            clock=_now if live else None,
                            recommend=recommend,
                        )
                    ),
                    rate=rate,
                    on_progress=progress.update,
                )
            finally:
                producer.close()
        except ProduceError as exc:
            raise click.ClickException(str(exc)) from exc
    elapsed = time.monotonic() - started
    topics = ", ".join(f"{topic}={count}" for topic, count in sorted(per_topic.items()))
    click.echo(
        f"produced {produced} events ({topics}) in {elapsed:.1f}s "
        f"({produced / elapsed if elapsed else 0:.0f} events/s)"
    )


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _truth_writer(path: Path | None):
    """Yields a `write(truth_dict)` function appending JSON lines to `path` (a no-op without)."""
    if path is None:
        yield lambda truth: None
        return
    with path.open("w", encoding="utf-8") as file:
        yield lambda truth: file.write(json.dumps(truth, ensure_ascii=False) + "\n")
