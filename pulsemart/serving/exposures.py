"""Exposures: what the API showed, produced to `shop.exposures` without touching the response.

Every recommendations response carries a fresh `recommendation_id`, and the route hands the id
and the answer's bytes to `ExposureLog.offer`, which never blocks and never raises:

- while Kafka acknowledges, `offer` itself turns the answer (its `exposure_part`, kept beside
  it in the response cache) into a `recommendation_exposed` event (the contract's fields; the
  customer id becomes its keyed hash, so no raw id leaves the API) and hands it to
  librdkafka's producer (C, asynchronous): about 8 µs on the request's thread. Measured,
  that costs the API less than the same Python work on a thread of its own, which makes the
  event loop wait for the GIL;
- otherwise (the broker away, the database not yet read for the key) the answer goes to a
  bounded in-memory queue; a full queue drops and counts.

One thread per API process does the rest: it serves librdkafka's delivery reports (waiting
in C, without the GIL), and sends whatever Kafka did not acknowledge (a delivery error or
timeout, a full local buffer, all brokers down, or what is unsent at shutdown) to the
process's durable spool (exposure_spool.py), along with the queued answers while the broker is
away; the spool is sent again, oldest first, once the broker answers, and each record
forgotten once acknowledged. So with the broker away, exposures wait on disk up to the spool's
bound; past it they are dropped and counted. What librdkafka holds in memory is at most
`DELIVERY_S` of traffic, sent before the outage was seen. The counts (offered, produced,
pending, dropped) are logged when exposures start to wait, when something is dropped and when
they flow again; `stats()` returns them.

The customer key is the datamart's (governance.keyed_hash): HMAC-SHA256 under the key in
governance.pii_key, computed here from the same pads, read once per process.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

import orjson
from confluent_kafka import KafkaError

from ml.names import RECOMMENDER
from pulsemart.config import EXPOSURES_TOPIC, Settings
from pulsemart.contracts import format_event_time
from pulsemart.contracts.spec import SCHEMA_VERSION
from pulsemart.serving.exposure_spool import ExposureSpool

log = logging.getLogger(__name__)

SOURCE = "serving-api"
QUEUE_MAX = 10_000  # answers waiting for the thread; past it, offers are dropped
BATCH = 1000  # spooled records sent again per round
ROUND_S = 0.05  # how long a round waits for delivery reports
DELIVERY_S = 5.0  # how long librdkafka may try to deliver an exposure before it is spooled
RETRY_S = (0.5, 10.0)  # first and longest pause between attempts while the broker is away
CLOSE_FLUSH_S = 3.0  # at shutdown, how long to wait for acknowledgements before spooling


class Offer(NamedTuple):
    recommendation_id: str
    route: str  # "customer" or "session"
    body: bytes  # the answer as served (schema.Recommendations, without the id)
    at: datetime
    shadow: dict | None = None  # a shadow challenger's {model_version, items}, never shown


# A confluent_kafka.Producer; the log calls produce, poll, flush and purge.
Producer = Any
Pads = tuple[bytes, bytes]  # (inner, outer): governance.pii_key's HMAC pads
Record = tuple[bytes, bytes]  # (key, value) as produced


# 32 lowercase hex digits, as uuid4().hex, without a system call per response: 64 random bits
# drawn once per process, then a counter (itertools.count is atomic under the GIL).
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(secrets.randbelow(2**32))


def new_recommendation_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"


def exposure_part(answer: dict) -> bytes:
    """What an exposure needs of a recommendations answer, as JSON: a few hundred bytes to
    parse per exposure instead of the whole body (`exposure_event` reads either)."""
    return orjson.dumps(
        {
            "customer_id": answer.get("customer_id"),
            "session_id": answer.get("session_id"),
            "model_version": answer.get("model_version"),
            "variant": answer.get("variant"),
            "experiment_id": answer.get("experiment_id"),
            "items": _shown(answer["items"]),
        }
    )


def _shown(items: list[dict]) -> list[dict]:
    return [
        {"product_id": item["product_id"], "position": n, "because": list(item["because"])}
        for n, item in enumerate(items, start=1)
    ]


def with_recommendation_id(body: bytes, recommendation_id: str) -> bytes:
    """The answer's JSON object with `recommendation_id` as its first member."""
    return b'{"recommendation_id":"' + recommendation_id.encode() + b'",' + body[1:]


def keyed_hash(pads: Pads, value: str) -> str:
    """governance.keyed_hash(value): HMAC-SHA256 from the key's precomputed pads."""
    inner, outer = pads
    digest = hashlib.sha256(inner + value.encode()).digest()
    return hashlib.sha256(outer + digest).hexdigest()


_HASHED: dict[tuple[Pads, str], str] = {}
_HASHED_MAX = 100_000  # customers whose key is remembered; past it the memo starts again


def _customer_key(pads: Pads, customer_id: str) -> str:
    key = (pads, customer_id)
    hashed = _HASHED.get(key)
    if hashed is None:
        if len(_HASHED) >= _HASHED_MAX:
            _HASHED.clear()
        hashed = _HASHED[key] = keyed_hash(pads, customer_id)
    return hashed


def exposure_event(offer: Offer, pads: Pads) -> dict:
    """The `recommendation_exposed` event of one served answer (or of its `exposure_part`).

    Written out in the contract's field order rather than through `build_event`, whose checks
    cost more than the rest together on the request path; a unit test holds the two equal."""
    answer = orjson.loads(offer.body)
    items = answer["items"]
    customer = answer.get("customer_id")
    customer_key = _customer_key(pads, customer) if customer is not None else None
    shadow = offer.shadow or {}
    return {
        "event_id": offer.recommendation_id,
        "event_type": "recommendation_exposed",
        "event_time": format_event_time(offer.at),
        "schema_version": SCHEMA_VERSION,
        "source": SOURCE,
        "recommendation_id": offer.recommendation_id,
        "shopper_key": customer_key or answer["session_id"],
        "customer_key": customer_key,
        "session_id": answer.get("session_id"),
        "route": offer.route,
        "variant": answer.get("variant") or "champion",
        "model_name": RECOMMENDER,
        "model_version": answer.get("model_version"),
        # An exposure_part's items are already as shown; a whole answer's are turned so.
        "items": items if not items or "position" in items[0] else _shown(items),
        "experiment_id": answer.get("experiment_id"),
        "shadow_model_version": shadow.get("model_version"),
        "shadow_items": shadow.get("items"),
    }


class ExposureLog:
    """The API process's exposure log: `offer` on the request path, the rest on a thread."""

    def __init__(
        self,
        spool: ExposureSpool,
        connect: Callable[[Callable[[Any], None]], Producer],
        load_pads: Callable[[], Pads],
        queue_max: int = QUEUE_MAX,
    ) -> None:
        """`connect(error_cb)` makes the producer; `error_cb` hears of a broker gone."""
        self.spool = spool
        self._connect, self._load_pads = connect, load_pads
        self._queue: deque[Offer] = deque()
        self._queue_max = queue_max
        self._producer: Producer | None = None
        self._pads: Pads | None = None
        self._stop = threading.Event()
        self._healthy = True  # no delivery has failed since the last one that succeeded
        self._retry_at, self._pause = 0.0, RETRY_S[0]
        self._resending: set[int] = set()  # spool rows produced again, not yet acknowledged
        self._acked: list[int] = []  # spool rows acknowledged since the last round
        self.offered = self.produced = self.queue_dropped = 0
        self._thread = threading.Thread(target=self._run, name="exposure-log", daemon=True)

    def start(self) -> ExposureLog:
        self._thread.start()
        return self

    def offer(
        self, recommendation_id: str, route: str, body: bytes, shadow: dict | None = None
    ) -> None:
        """Log one served answer; never blocks, never raises.

        While Kafka acknowledges, the event is built and handed to librdkafka right here
        (about 8 µs from an `exposure_part`): Python work on a thread of its own would cost
        the API more, since the event loop then waits for the GIL. Otherwise the answer is
        queued for the thread."""
        self.offered += 1
        offer = Offer(recommendation_id, route, body, datetime.now(UTC), shadow)
        producer, pads = self._producer, self._pads
        if producer is not None and pads is not None and self._healthy:
            record = self._record(offer, pads)
            if record is None or self._handed_over(producer, *record):
                return
        if len(self._queue) >= self._queue_max:
            self.queue_dropped += 1
            return
        self._queue.append(offer)

    def _record(self, offer: Offer, pads: Pads) -> Record | None:
        """The exposure as (key, value) to produce; None (counted) for an answer of another
        shape, which only a defect can send here."""
        try:
            event = exposure_event(offer, pads)
        except (ValueError, KeyError, TypeError) as exc:
            self.queue_dropped += 1
            log.error("exposure %s not logged: %r", offer.recommendation_id, exc)
            return None
        return event["shopper_key"].encode(), orjson.dumps(event)

    def stats(self) -> dict[str, int]:
        return {
            "offered": self.offered,
            "produced": self.produced,
            "pending": self.spool.pending + len(self._queue),
            "dropped": self.queue_dropped + self.spool.dropped,
        }

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop: send or spool what is queued or in flight (within about `timeout_s`)."""
        self._stop.set()
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self.spool.close()

    # --- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._round()
            except Exception as exc:  # noqa: BLE001 - the log must outlive any failure of a round
                self._went_away(f"{type(exc).__name__}: {exc}")
                self._stop.wait(ROUND_S)
        try:
            self._last_round()
        except Exception:
            log.exception("exposures: the last round failed; %s", self.stats())

    def _round(self) -> None:
        if self._producer is None:
            self._producer = self._connect(self._on_error)
        if self._pads is None:
            self._pads = self._load_pads()  # raises while the database is away: offers queue
        records = self._take_queued()
        if records:
            if self._healthy:
                self._produce(self._producer, records)
            else:
                self._keep(records)
        # Delivery callbacks run here, on this thread; the wait is in C, without the GIL.
        self._producer.poll(ROUND_S)
        if self._acked:
            self.spool.remove(self._acked)
            self._acked = []
        waiting = self.spool.pending and not self._resending
        if waiting and (self._healthy or time.monotonic() >= self._retry_at):
            self._resend(self._producer)

    def _last_round(self) -> None:
        producer, self._producer = self._producer, None
        try:
            records = self._take_queued(all_of_them=True)
            if producer is None or not self._healthy:
                self._keep(records)
                return
            self._produce(producer, records)
            if self.spool.pending and not self._resending:
                self._resend(producer)  # one more batch of what waited, while we can
            if producer.flush(CLOSE_FLUSH_S) > 0:
                producer.purge()  # what is still unsent comes back through the callbacks
                producer.poll(0)
            if self._acked:
                self.spool.remove(self._acked)
        finally:
            if producer is not None:
                # Its threads would otherwise go on reconnecting to a broker long gone.
                producer.close()

    def _take_queued(self, all_of_them: bool = False) -> list[Record]:
        """The queued answers as records to produce (the DB gives the key's pads once)."""
        if not self._queue:
            return []
        if self._pads is None:
            self._pads = self._load_pads()  # raises while the database is away: kept queued
        records: list[Record] = []
        while self._queue and (all_of_them or len(records) < 4 * BATCH):
            record = self._record(self._queue.popleft(), self._pads)
            if record is not None:
                records.append(record)
        return records

    def _produce(self, producer: Producer, records: list[Record]) -> None:
        for n, (key, value) in enumerate(records):
            if not self._handed_over(producer, key, value):
                self._keep(records[n:])
                return

    def _handed_over(self, producer: Producer, key: bytes, value: bytes) -> bool:
        """Whether librdkafka took the record (its delivery report follows); on the request's
        thread as on the log's, a refusal marks the broker away and never raises."""
        try:
            producer.produce(EXPOSURES_TOPIC, value, key, on_delivery=self._delivered)
            return True
        except BufferError:  # librdkafka's local queue is full: the broker is not keeping up
            self._went_away("the producer's buffer is full")
        except Exception as exc:  # noqa: BLE001 - a response never fails for its exposure
            self._went_away(f"{type(exc).__name__}: {exc}")
        return False

    def _resend(self, producer: Producer) -> None:
        for rowid, key, value in self.spool.oldest(BATCH):
            self._resending.add(rowid)
            try:
                producer.produce(
                    EXPOSURES_TOPIC, value, key, on_delivery=partial(self._resent, rowid)
                )
            except BufferError:
                self._resending.discard(rowid)
                break
        self._retry_at = time.monotonic() + self._pause

    def _keep(self, records: list[Record]) -> None:
        """Spool what Kafka did not take; count what the spool cannot hold."""
        refused = self.spool.add(records)
        if refused:
            log.warning("exposure spool full: %d exposure(s) dropped; %s", refused, self.stats())

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is None:
            self.produced += 1
            self._flowing()
        else:
            self._went_away(str(err))
            self._keep([(msg.key(), msg.value())])

    def _resent(self, rowid: int, err: Any, msg: Any) -> None:
        self._resending.discard(rowid)
        if err is None:
            self.produced += 1
            self._acked.append(rowid)
            self._flowing()
        else:
            self._went_away(str(err))

    def _on_error(self, err: Any) -> None:
        """librdkafka's error callback: every broker down means exposures wait in the spool."""
        if getattr(err, "code", lambda: None)() == KafkaError._ALL_BROKERS_DOWN:
            self._went_away(str(err))

    def _flowing(self) -> None:
        if not self._healthy:
            log.info("exposures flowing again; %s", self.stats())
        self._healthy, self._pause = True, RETRY_S[0]

    def _went_away(self, why: str) -> None:
        if self._healthy:
            log.warning("exposures wait in the spool: %s; %s", why, self.stats())
        self._healthy = False
        self._retry_at = time.monotonic() + self._pause
        self._pause = min(self._pause * 2, RETRY_S[1])


PADS = "select inner_pad, outer_pad from governance.pii_key"


def start_exposure_log(settings: Settings) -> ExposureLog | None:
    """The process's exposure log as the settings ask (None when PULSEMART_EXPOSURES is off),
    its thread started."""
    if not settings.exposures:
        return None
    from confluent_kafka import Producer as KafkaProducer

    from pulsemart.cloud.kafka import librdkafka_config
    from pulsemart.serving.pool import own_connection

    connect_db = own_connection(settings)

    def load_pads() -> Pads:
        with connect_db() as conn:
            row = conn.execute(PADS).fetchone()
        if row is None:
            raise RuntimeError("governance.pii_key is empty: run the migrations")
        return bytes(row[0]), bytes(row[1])

    def connect(error_cb: Callable[[Any], None]) -> Producer:
        config = dict(
            librdkafka_config(settings.kafka_bootstrap, settings.kafka_security),
            **{
                "acks": "all",
                "linger.ms": 20,
                "message.timeout.ms": int(DELIVERY_S * 1000),
                "request.timeout.ms": int(DELIVERY_S * 1000),
                "error_cb": error_cb,
                # Critical only: connection errors repeat every few seconds while the broker is
                # away; error_cb sees them and the log reports the outage once.
                "log_level": 2,
            },
        )
        return KafkaProducer(config)

    spool = ExposureSpool(settings.home / "spool", settings.exposure_spool_rows)
    return ExposureLog(spool, connect, load_pads).start()
