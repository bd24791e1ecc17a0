"""`bench serving`: the serving API under a bounded local load, and produce → search freshness.

Three parts, all in the harness's temporary stack:

1. `load_data`: simulated events produced to shop.catalog and shop.events, then
   `catch_up(..., serve=True)` lands, decides and folds them into `serving.*`.
2. `api_load`: `pulsemart serve` as a real uvicorn server in a child process, and a closed-loop
   load from this process (asyncio + httpx, `clients` concurrent clients, each sending its next
   request when the last answered) against 127.0.0.1 only, for `GET /health` (the anchor: the
   framework, server and one `select 1` through the pool), `/products/search` and
   `/customers/{id}/recommendations`. Bounded in time and in requests per client.
3. produce → search freshness under `pulsemart up`: see benchmarks/pulsemart_bench/freshness.py.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from pulsemart.config import Settings
from pulsemart.local.processes import wait_until
from pulsemart.store.db import connect_migrated
from pulsemart_bench.measure import Measurement, percentile
from pulsemart_bench.stack import free_port, recreate_topics, truncate_store

TOPICS = ["shop.catalog", "shop.events"]
MAX_REQUESTS_PER_CLIENT = 1_000_000  # a bound on every load loop besides its deadline
REQUEST_TIMEOUT_S = 10.0


# --- 1. data ---------------------------------------------------------------------------------

@dataclass
class LoadedData:
    produced: int
    seconds: float  # catch_up, call to return
    rows: dict[str, int]


def load_data(settings: Settings, n_events: int, seed: int) -> LoadedData:
    """Empty topics and store, produce `n_events` simulated events, catch up with serve=True."""
    from orchestration.catch_up import catch_up
    from orchestration.streaming import defs
    from pulsemart.stream.producer import ProducedEvent, make_producer, produce_events
    from pulsemart.stream.simulator import generate

    recreate_topics(settings)
    truncate_store(settings)
    producer = make_producer(settings)
    try:
        produced = produce_events(producer, (ProducedEvent(e.topic, e.key, e.value) for e in generate(n_events, seed)),
                                  flush_timeout_s=120)
    finally:
        producer.close(timeout=10)
    started = time.perf_counter()
    catch_up(settings, defs, TOPICS, serve=True)
    seconds = time.perf_counter() - started
    with connect_migrated(settings) as conn:
        count = psycopg.sql.SQL("select count(*) from {}")
        rows = {t: conn.execute(count.format(psycopg.sql.Identifier("serving", t))).fetchone()[0]
                for t in ("product_state", "customer_profile", "trending", "session_funnel")}
    return LoadedData(produced, seconds, rows)


# --- request mixes ---------------------------------------------------------------------------

Request = tuple[str, dict]

_WORD = re.compile(r"[A-Za-z]{4,}")


def search_mix(categories: list[str], prices: list[float], descriptions: list[str], product_ids: list[str],
               n: int, seed: int) -> list[Request]:
    """`n` realistic `/products/search` parameter sets drawn from what the tables hold:
    category + price range + in stock sorted by price (the most common shop filter), text
    queries, category + customizable, price range alone, exact product ids."""
    rng = random.Random(seed)
    words = sorted({w.lower() for d in descriptions for w in _WORD.findall(d or "")}) or ["bag"]
    prices = sorted(p for p in prices if p is not None and p > 0) or [1.0, 10.0]
    categories = categories or [None]

    def price_range() -> tuple[float, float]:
        low, high = sorted(rng.sample(prices, 2)) if len(prices) > 1 else (prices[0], prices[0])
        return round(low, 2), round(max(high, low + 0.01), 2)

    mix: list[Request] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.40:
            low, high = price_range()
            params = {"category": rng.choice(categories), "price_min": low, "price_max": high,
                      "available": "true", "sort": "price"}
        elif roll < 0.65:
            params = {"q": rng.choice(words)}
        elif roll < 0.75:
            params = {"q": rng.choice(words), "available": "true", "sort": "-price"}
        elif roll < 0.85:
            params = {"category": rng.choice(categories), "customizable": "true"}
        elif roll < 0.95:
            low, high = price_range()
            params = {"price_min": low, "price_max": high, "sort": "popularity", "limit": 50}
        else:
            params = {"q": rng.choice(product_ids) if product_ids else rng.choice(words)}
        mix.append(("/products/search", {k: v for k, v in params.items() if v is not None}))
    return mix


def recommendation_mix(customer_ids: list[str], n: int, seed: int, unknown_share: float = 0.05,
                       k: int = 10) -> list[Request]:
    """`n` recommendation requests: known customers, and a share of unknown ones (the trending
    fallback)."""
    rng = random.Random(seed)
    mix: list[Request] = []
    for i in range(n):
        if not customer_ids or rng.random() < unknown_share:
            who = f"bench-unknown-{i}"
        else:
            who = rng.choice(customer_ids)
        mix.append((f"/customers/{who}/recommendations", {"k": k}))
    return mix


def mixes_from_store(settings: Settings, seed: int, n: int = 1000) -> tuple[list[Request], list[Request]]:
    with connect_migrated(settings) as conn:
        categories = [r[0] for r in conn.execute(
            "select distinct category from serving.product_state where category is not null order by 1")]
        products = conn.execute("select product_id, description, unit_price from serving.product_state "
                                "where unit_price is not null order by product_id").fetchall()
        customers = [r[0] for r in conn.execute("select customer_id from serving.customer_profile order by 1")]
    search = search_mix(categories, [p[2] for p in products], [p[1] for p in products],
                        [p[0] for p in products], n, seed)
    return search, recommendation_mix(customers, n, seed + 1)


# --- 2. the API under load -------------------------------------------------------------------

@dataclass
class LoadResult:
    name: str
    clients: int
    seconds: float  # wall time of the measured window (until the last answer)
    latencies_s: list[float] = field(default_factory=list)  # every answered request
    statuses: Counter = field(default_factory=Counter)
    failures: int = 0  # no answer at all (timeout, connection error)
    response_bytes: int = 0

    @property
    def answered(self) -> int:
        return len(self.latencies_s)

    @property
    def errors(self) -> int:
        """Answers that were not 2xx."""
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def measurement(self) -> Measurement:
        return Measurement(self.name, self.answered, self.response_bytes, self.seconds, "requests")

    def p(self, q: float) -> float | None:
        return percentile(self.latencies_s, q)


async def _drive(client: httpx.AsyncClient, requests: list[Request], clients: int, seconds: float,
                 result: LoadResult | None) -> None:
    """`clients` workers, each sending its next request when the last answered, until the
    deadline or MAX_REQUESTS_PER_CLIENT. With `result` None the answers are not recorded."""
    deadline = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        j = i
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.perf_counter() >= deadline:
                return
            path, params = requests[j % len(requests)]
            j += clients
            started = time.perf_counter()
            try:
                response = await client.get(path, params=params)
            except httpx.HTTPError:
                if result is not None:
                    result.failures += 1
                continue
            elapsed = time.perf_counter() - started
            if result is not None:
                result.latencies_s.append(elapsed)
                result.statuses[response.status_code] += 1
                result.response_bytes += len(response.content)

    await asyncio.gather(*(worker(i) for i in range(clients)))


async def _run_load(base_url: str, key: str, name: str, requests: list[Request], clients: int, seconds: float,
                    warmup_s: float) -> LoadResult:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}, limits=limits,
                                 timeout=REQUEST_TIMEOUT_S) as client:
        if warmup_s > 0:  # opens the connections and fills the server's pool; not measured
            await _drive(client, requests, clients, warmup_s, None)
        result = LoadResult(name, clients, 0.0)
        started = time.perf_counter()
        await _drive(client, requests, clients, seconds, result)
        result.seconds = time.perf_counter() - started
    return result


def load(base_url: str, key: str, name: str, requests: list[Request], clients: int, seconds: float,
         warmup_s: float = 3.0) -> LoadResult:
    return asyncio.run(_run_load(base_url, key, name, requests, clients, seconds, warmup_s))


def start_server(settings: Settings, key: str, port: int, timeout_s: float = 60) -> subprocess.Popen:
    """`pulsemart serve --port PORT` with PULSEMART_API_KEY=key, once /health answers 200."""
    exe = str(Path(sys.executable).parent / "pulsemart")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / "bench-serve.log", "ab") as log:  # the child keeps its own copy
        server = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                  env=dict(os.environ, PULSEMART_API_KEY=key), stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def healthy() -> bool:
        if server.poll() is not None:
            return True
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, timeout_s, "pulsemart serve's /health", interval_s=0.2)
    except BaseException:
        stop(server)
        raise
    if server.poll() is not None:
        raise RuntimeError(f"pulsemart serve exited; see {settings.run_dir / 'bench-serve.log'}")
    return server


def stop(process: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGINT the process group we started (uvicorn and `pulsemart up` stop cleanly on it)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass
class ApiResult:
    loaded: list[LoadResult]  # under `clients` clients: health first
    single: list[LoadResult]  # one client: service time without queueing


def api_load(settings: Settings, clients: int, seconds: float, single_seconds: float, seed: int,
             echo) -> ApiResult:
    search, recs = mixes_from_store(settings, seed)
    health = [("/health", {})]
    key = secrets.token_urlsafe(24)
    port = free_port()
    server = start_server(settings, key, port)
    base = f"http://127.0.0.1:{port}"
    try:
        loaded, single = [], []
        for name, requests in (("GET /health (anchor)", health), ("GET /products/search", search),
                               ("GET /customers/{id}/recommendations?k=10", recs)):
            echo(f"  {name}: {clients} clients for {seconds:g} s")
            loaded.append(load(base, key, name, requests, clients, seconds))
        if single_seconds > 0:
            for name, requests in (("GET /health (anchor)", health), ("GET /products/search", search),
                                   ("GET /customers/{id}/recommendations?k=10", recs)):
                echo(f"  {name}: 1 client for {single_seconds:g} s")
                single.append(load(base, key, name, requests, 1, single_seconds, warmup_s=1.0))
    finally:
        stop(server)
    return ApiResult(loaded, single)
