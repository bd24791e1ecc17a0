"""Exposures: what the API showed, produced to `shop.exposures` without touching the response.

Every recommendations response carries a fresh `recommendation_id`; the route hands the id and
the answer's bytes to `ExposureLog.offer`, which only puts them on a bounded in-memory queue
(a full queue drops and counts: a response never waits for the log). One thread per API
process does the rest, in batches:

1. turns each answer into a `recommendation_exposed` event (pulsemart.contracts): the customer
   id becomes its keyed hash, so no raw id leaves the API;
2. appends the events to the process's durable spool (exposure_spool.py);
3. sends the spool's oldest records to Kafka and forgets them once acknowledged.

With the broker away, step 3 fails and is retried with a growing pause, while steps 1-2 keep
the events on disk up to the spool's bound; past it they are dropped and counted. The counts
(offered, produced, pending, dropped) are logged when something is dropped and when an outage
ends, and `stats()` returns them.

The customer key is the datamart's (governance.keyed_hash): HMAC-SHA256 under the key in
governance.pii_key, computed here from the same pads, read once per process.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from ml.names import RECOMMENDER
from pulsemart.config import EXPOSURES_TOPIC, Settings
from pulsemart.contracts import build_event, encode_event
from pulsemart.serving.exposure_spool import ExposureSpool

log = logging.getLogger(__name__)

VARIANT = "champion"  # the only arm until experiments exist
SOURCE = "serving-api"
QUEUE_MAX = 10_000  # answers waiting for the thread; past it, offers are dropped
BATCH = 500  # records sent per round
ROUND_S = 0.2  # pause between rounds while nothing is waiting
FLUSH_S = 5.0  # how long a round waits for Kafka's acknowledgements
RETRY_S = (0.5, 10.0)  # first and longest pause after a failed round
CONNECT_S = 3.0  # how long a connection to the broker, or a send, may wait


@dataclass(frozen=True)
class Offer:
    recommendation_id: str
    route: str  # "customer" or "session"
    body: bytes  # the answer as served (schema.Recommendations, without the id)
    at: datetime


class Producer(Protocol):
    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> Any: ...
    def flush(self, timeout: float | None = None) -> None: ...
    def close(self, timeout: float | None = None) -> None: ...


Pads = tuple[bytes, bytes]  # (inner, outer): governance.pii_key's HMAC pads


def new_recommendation_id() -> str:
    return uuid.uuid4().hex


def with_recommendation_id(body: bytes, recommendation_id: str) -> bytes:
    """The answer's JSON object with `recommendation_id` as its first member."""
    return b'{"recommendation_id":"' + recommendation_id.encode() + b'",' + body[1:]


def keyed_hash(pads: Pads, value: str) -> str:
    """governance.keyed_hash(value): HMAC-SHA256 from the key's precomputed pads."""
    inner, outer = pads
    digest = hashlib.sha256(inner + value.encode()).digest()
    return hashlib.sha256(outer + digest).hexdigest()


def exposure_event(offer: Offer, pads: Pads) -> dict:
    """The `recommendation_exposed` event of one served answer."""
    answer = orjson.loads(offer.body)
    customer = answer.get("customer_id")
    customer_key = keyed_hash(pads, customer) if customer is not None else None
    items = [
        {"product_id": item["product_id"], "position": n, "because": list(item["because"])}
        for n, item in enumerate(answer["items"], start=1)
    ]
    return build_event(
        "recommendation_exposed",
        event_id=offer.recommendation_id,
        event_time=offer.at,
        source=SOURCE,
        recommendation_id=offer.recommendation_id,
        shopper_key=customer_key or answer["session_id"],
        customer_key=customer_key,
        session_id=answer.get("session_id"),
        route=offer.route,
        variant=VARIANT,
        model_name=RECOMMENDER,
        model_version=answer.get("model_version"),
        items=items,
    )


class ExposureLog:
    """The API process's exposure log: `offer` on the request path, the rest on a thread."""

    def __init__(
        self,
        spool: ExposureSpool,
        connect: Callable[[], Producer],
        load_pads: Callable[[], Pads],
        queue_max: int = QUEUE_MAX,
    ) -> None:
        self.spool = spool
        self._connect, self._load_pads = connect, load_pads
        self._queue: queue.Queue[Offer] = queue.Queue(maxsize=queue_max)
        self._producer: Producer | None = None
        self._pads: Pads | None = None
        self._stop = threading.Event()
        self._retry_at, self._pause = 0.0, RETRY_S[0]
        self.offered = self.produced = self.queue_dropped = 0
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="exposure-log", daemon=True)

    def start(self) -> ExposureLog:
        self._thread.start()
        return self

    def offer(self, recommendation_id: str, route: str, body: bytes) -> None:
        """Log one served answer; never blocks, never raises."""
        self.offered += 1
        try:
            self._queue.put_nowait(Offer(recommendation_id, route, body, datetime.now(UTC)))
        except queue.Full:
            self.queue_dropped += 1

    def stats(self) -> dict[str, int]:
        return {
            "offered": self.offered,
            "produced": self.produced,
            "pending": self.spool.pending + self._queue.qsize(),
            "dropped": self.queue_dropped + self.spool.dropped,
        }

    def close(self, timeout_s: float = 5.0) -> None:
        """Spool what is queued, try one last send, and stop (within about `timeout_s`)."""
        self._stop.set()
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            if self._producer is not None:
                self._producer.close(timeout=0)
            self.spool.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = self._round()
            if not busy:
                self._stop.wait(ROUND_S)
        self._round(final=True)

    def _round(self, final: bool = False) -> bool:
        """Spool what is queued and send a batch; whether more may be waiting. After a
        failure nothing is tried before the pause is over (except on the last round)."""
        if not final and time.monotonic() < self._retry_at:
            return False
        try:
            self._spool_queued()
            if self.spool.pending:
                self._send_batch(FLUSH_S / 2 if final else FLUSH_S)
        except Exception as exc:  # noqa: BLE001 - the log must outlive any failure of a round
            self._failed(exc)
            return False
        return self._queue.qsize() > 0 or self.spool.pending > 0

    def _spool_queued(self) -> None:
        if self._queue.empty():
            return
        if self._pads is None:
            self._pads = self._load_pads()  # raises while the database is away: kept queued
        offers: list[Offer] = []
        while len(offers) < BATCH * 4:
            try:
                offers.append(self._queue.get_nowait())
            except queue.Empty:
                break
        events = [exposure_event(offer, self._pads) for offer in offers]
        refused = self.spool.add([(e["shopper_key"].encode(), encode_event(e)) for e in events])
        if refused:
            log.warning("exposure spool full: %d exposure(s) dropped; %s", refused, self.stats())

    def _send_batch(self, flush_s: float) -> None:
        if self._producer is None:
            self._producer = self._connect()
        records = self.spool.oldest(BATCH)
        futures = [
            (rowid, self._producer.send(EXPOSURES_TOPIC, key=key, value=value))
            for rowid, key, value in records
        ]
        self._producer.flush(timeout=flush_s)
        acked = [rowid for rowid, future in futures if future.succeeded()]
        self.spool.remove(acked)
        self.produced += len(acked)
        if len(acked) < len(futures):
            failed = next(f for _, f in futures if not f.succeeded())
            raise RuntimeError(f"{len(futures) - len(acked)} exposure(s) not acknowledged") from (
                failed.exception if failed.is_done else None
            )
        if self._failing:
            log.info("exposures flowing again; %s", self.stats())
        self._failing, self._pause = False, RETRY_S[0]

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            log.warning("exposures wait in the spool: %s; %s", exc, self.stats())
        self._failing = True
        if self._producer is not None:
            self._producer.close(timeout=0)
            self._producer = None
        self._retry_at = time.monotonic() + self._pause
        self._pause = min(self._pause * 2, RETRY_S[1])


PADS = "select inner_pad, outer_pad from governance.pii_key"


def start_exposure_log(settings: Settings) -> ExposureLog | None:
    """The process's exposure log as the settings ask (None when PULSEMART_EXPOSURES is off),
    its thread started."""
    if not settings.exposures:
        return None
    from kafka import KafkaProducer

    from pulsemart.serving.pool import own_connection

    connect_db = own_connection(settings)

    def load_pads() -> Pads:
        with connect_db() as conn:
            row = conn.execute(PADS).fetchone()
        if row is None:
            raise RuntimeError("governance.pii_key is empty: run the migrations")
        return bytes(row[0]), bytes(row[1])

    def connect() -> Producer:
        # pulsemart.stream.producer.make_producer's settings, with shorter waits: this runs
        # beside live requests, and the stream package imports serving (no cycle back).
        wait_ms = int(CONNECT_S * 1000)
        producer: Producer = KafkaProducer(
            **settings.kafka_client_config(),
            acks="all",
            linger_ms=20,
            max_block_ms=wait_ms,
            bootstrap_timeout_ms=wait_ms,
            request_timeout_ms=wait_ms,
        )
        return producer

    spool = ExposureSpool(settings.home / "spool", settings.exposure_spool_rows)
    return ExposureLog(spool, connect, load_pads).start()
