"""`generate`: the simulated stream as Kafka-ready records, optionally with recorded dirt."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from pulsemart.contracts import build_event, encode_event, key_for, topic_for
from pulsemart.stream.simulator.catalog import build_catalog
from pulsemart.stream.simulator.customers import build_customers
from pulsemart.stream.simulator.dirt import choose_corruption, corrupt
from pulsemart.stream.simulator.reactions import Recommend
from pulsemart.stream.simulator.world import World

# A fixed default start keeps the output a function of the seed alone.
DEFAULT_START_TIME = datetime(2024, 3, 1, tzinfo=UTC)
SOURCE = "simulator"


class SimulatedEvent(NamedTuple):
    """A record to produce; `truth` says how it was corrupted, or is None when it is clean."""

    topic: str
    key: str | None
    value: bytes
    truth: dict | None


class _Clean(NamedTuple):
    event: dict
    record: SimulatedEvent
    moment: datetime


def generate(
    n_events: int,
    seed: int,
    dirty_rate: float = 0.0,
    start_time: datetime | None = None,
    *,
    n_products: int = 200,
    n_customers: int = 2000,
    clock: Callable[[], datetime] | None = None,
    recommend: Recommend | None = None,
) -> Iterator[SimulatedEvent]:
    """Exactly `n_events` records: a product_upserted per catalog product, then shop activity.

    The seed determines every byte. A fraction `dirty_rate` of the records after the catalog
    bootstrap is corrupted (see `dirt` for the taxonomy), each with a truth record
    `{"event_id", "corruption", "field", "original"}`. Dirt draws from its own random stream,
    so the clean events are the same whatever the dirty rate.

    With `clock` (a live trickle), each event is stamped with `clock()` when it is generated
    rather than at its simulated offset: records are generated as they are produced, so a
    rate-limited producer sends events dated now. The world's clock runs ~25x faster than a
    5 events/s trickle, so simulated offsets from a start of "now" would run into the future
    (and be quarantined as such). Everything but the times still depends on the seed alone.

    With `recommend` (reactions.py), shoppers look at what the serving API recommends and
    click what suits them; the stream then also depends on the API's answers.
    """
    if n_events < 0:
        raise ValueError("n_events must not be negative")
    if not 0.0 <= dirty_rate <= 1.0:
        raise ValueError("dirty_rate must be between 0 and 1")
    start = start_time or (clock() if clock else DEFAULT_START_TIME)
    if start.tzinfo is None:
        raise ValueError("start_time must be timezone-aware")
    rng = random.Random(seed)
    dirt_rng = random.Random(f"dirt:{seed}")
    catalog = build_catalog(rng, n_products)
    customers = build_customers(rng, n_customers, catalog.categories)

    def clean(event_type: str, fields: dict, moment: datetime) -> _Clean:
        event = build_event(
            event_type,
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            event_time=moment,
            source=SOURCE,
            **fields,
        )
        record = SimulatedEvent(topic_for(event_type), key_for(event), encode_event(event), None)
        return _Clean(event, record, moment)

    bootstrap = catalog.products[:n_events]
    for product in bootstrap:
        yield clean("product_upserted", product.upsert_fields(), start).record
    start_utc = start.astimezone(UTC)
    start_hour = start_utc.hour + start_utc.minute / 60
    activity = (
        clean(event_type, fields, clock() if clock else start + timedelta(seconds=offset))
        for offset, event_type, fields in World(
            rng, catalog, customers, start_hour, recommend
        ).events()
    )
    yield from _with_dirt(activity, n_events - len(bootstrap), dirty_rate, dirt_rng, start)


def _with_dirt(
    activity: Iterator[_Clean],
    n_records: int,
    dirty_rate: float,
    rng: random.Random,
    start: datetime,
) -> Iterator[SimulatedEvent]:
    pending: _Clean | None = None
    last_clean: _Clean | None = None
    previous_moment = start
    for _ in range(n_records):
        if pending is None:
            pending = next(activity)
        if not (dirty_rate and rng.random() < dirty_rate):
            yield pending.record
            last_clean, previous_moment, pending = pending, pending.moment, None
            continue
        kind = choose_corruption(rng, pending.event, can_duplicate=last_clean is not None)
        # A duplicate re-sends the last clean event and leaves the pending one for later.
        # (choose_corruption offers a duplicate only once there is a clean event to repeat.)
        target = last_clean if kind == "duplicate" and last_clean is not None else pending
        value, field = corrupt(rng, kind, target.event, target.moment, previous_moment)
        truth = {
            "event_id": target.event["event_id"],
            "corruption": kind,
            "field": field,
            "original": target.event,
        }
        yield SimulatedEvent(target.record.topic, target.record.key, value, truth)
        if kind != "duplicate":
            previous_moment, pending = pending.moment, None
