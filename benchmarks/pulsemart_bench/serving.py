"""`bench serving`: the serving API under a bounded local load, and produce → search freshness.

Three parts, all in the harness's temporary stack:

1. `load_data`: simulated events produced to shop.catalog and shop.events, then
   `catch_up(..., serve=True)` lands, decides and folds them into `serving.*`.
2. `api_load`: `pulsemart serve` (uvicorn, one worker per core) in a child process, loaded by
   wrk (Debian's package, a C load generator: no Python shares the measured cores beyond the
   server's) over keep-alive connections against 127.0.0.1 only, for `GET /health` (the
   anchor: framework, server and one `select 1` through the pool), `/products/search`,
   `/customers/{id}/recommendations` and `/customers/{id}` (propensity); with the response
   cache, then again with `--no-cache`. Each endpoint cycles through a static mix of 1,000
   requests while nothing writes to the serving tables, so with the cache on nearly every
   answer after the first pass is a hit: the `--no-cache` run is the one the section judges
   (pulsemart_bench/serving_report.py). `load_data` empties the store and nothing deploys a
   recommender, so recommendations measure the trending fallback; `ApiResult` records the
   deployed version (None) so the section says so from the data.
3. produce → search freshness under `pulsemart up`: see benchmarks/pulsemart_bench/freshness.py.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg

from ml.names import PROPENSITY, RECOMMENDER
from pulsemart.cli.serve import default_workers
from pulsemart.config import Settings
from pulsemart.local.processes import wait_until
from pulsemart.store.db import connect_migrated
from pulsemart_bench.measure import Measurement
from pulsemart_bench.stack import free_port, recreate_topics, truncate_store

TOPICS = ["shop.catalog", "shop.events"]
REQUEST_TIMEOUT_S = 10.0
WRK = shutil.which("wrk")
WORKERS = default_workers()  # what `pulsemart serve` runs by default


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
        produced = produce_events(
            producer,
            (ProducedEvent(e.topic, e.key, e.value) for e in generate(n_events, seed)),
            flush_timeout_s=120,
        )
    finally:
        producer.close(timeout=10)
    started = time.perf_counter()
    catch_up(settings, defs, TOPICS, serve=True)
    seconds = time.perf_counter() - started
    with connect_migrated(settings) as conn:
        count = psycopg.sql.SQL("select count(*) from {}")
        rows = {
            t: conn.execute(count.format(psycopg.sql.Identifier("serving", t))).fetchone()[0]
            for t in ("product_state", "customer_profile", "trending", "session_funnel")
        }
    return LoadedData(produced, seconds, rows)


# --- request mixes ---------------------------------------------------------------------------

Request = tuple[str, dict]

_WORD = re.compile(r"[A-Za-z]{4,}")


def search_mix(
    categories: list[str],
    prices: list[float],
    descriptions: list[str],
    product_ids: list[str],
    n: int,
    seed: int,
) -> list[Request]:
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
            params = {
                "category": rng.choice(categories),
                "price_min": low,
                "price_max": high,
                "available": "true",
                "sort": "price",
            }
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


def recommendation_mix(
    customer_ids: list[str], n: int, seed: int, unknown_share: float = 0.05, k: int = 10
) -> list[Request]:
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


def session_mix(sessions: list[tuple[str, str]], n: int, seed: int, k: int = 10) -> list[Request]:
    """`n` session-aware recommendation requests over (session, customer) pairs the stream
    produced: the blend with each shopper's own session."""
    rng = random.Random(seed)
    return [
        (f"/customers/{customer}/recommendations", {"k": k, "session_id": session})
        for session, customer in (rng.choice(sessions) for _ in range(n if sessions else 0))
    ]


def mixes_from_store(
    settings: Settings, seed: int, n: int = 1000
) -> tuple[list[Request], list[Request], list[Request]]:
    """Search, recommendation and session-aware recommendation mixes over the stored data."""
    with connect_migrated(settings) as conn:
        categories = [
            r[0]
            for r in conn.execute(
                "select distinct category from serving.product_state where category is not null order by 1"
            )
        ]
        products = conn.execute(
            "select product_id, description, unit_price from serving.product_state "
            "where unit_price is not null order by product_id"
        ).fetchall()
        customers = [
            r[0]
            for r in conn.execute("select customer_id from serving.customer_profile order by 1")
        ]
        sessions = conn.execute(
            "select session_id, customer_id from serving.session_funnel "
            "where customer_id is not null order by 1"
        ).fetchall()
    search = search_mix(
        categories,
        [p[2] for p in products],
        [p[1] for p in products],
        [p[0] for p in products],
        n,
        seed,
    )
    return search, recommendation_mix(customers, n, seed + 1), session_mix(sessions, n, seed + 2)


# --- 2. the API under load -------------------------------------------------------------------

# wrk runs one request list per thread, cycling from its own offset, and prints its figures as
# one JSON line (latencies in microseconds) so they are read exactly, not scraped from text.
WRK_SCRIPT = """
local paths = {%(paths)s}
local threads = {}
function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end
function init(args)
  i = offset or 0
  hits = 0
  stale = 0
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
function response(status, headers, body)
  local cache = headers["x-cache"] or headers["X-Cache"]
  if cache == "hit" then hits = hits + 1 elseif cache == "stale" then stale = stale + 1 end
end
function done(summary, latency, requests)
  local e = summary.errors
  local hits, stale = 0, 0
  for _, thread in ipairs(threads) do
    hits = hits + (thread:get("hits") or 0)
    stale = stale + (thread:get("stale") or 0)
  end
  io.write(string.format('WRK_JSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, ' ..
    '"socket_errors": %%d, "non_2xx": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d, ' ..
    '"cache_hits": %%d, "cache_stale": %%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(99), latency.max, hits, stale))
end
"""


@dataclass
class LoadResult:
    """One wrk run against one endpoint."""

    name: str
    connections: int
    seconds: float
    answered: int
    response_bytes: int
    errors: int  # answers with status >= 400
    failures: int  # connect, read, write errors and timeouts
    p50_s: float
    p99_s: float
    max_s: float
    load_average: tuple[float, float, float]  # when the run started (the machine is shared)
    cache_hits: int = 0  # answers with X-Cache: hit
    cache_stale: int = 0  # answers with X-Cache: stale (the cache's change log read too long ago)

    @property
    def hit_rate(self) -> float | None:
        return self.cache_hits / self.answered if self.answered else None

    @property
    def stale_rate(self) -> float | None:
        return self.cache_stale / self.answered if self.answered else None

    def measurement(self) -> Measurement:
        return Measurement(self.name, self.answered, self.response_bytes, self.seconds, "requests")

    def p(self, q: float) -> float | None:
        return {50: self.p50_s, 99: self.p99_s}[q]


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(requests: list[Request], folder: Path) -> Path:
    paths = [path + ("?" + urlencode(params) if params else "") for path, params in requests]
    script = folder / "requests.lua"
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(_lua_string(p) for p in paths)})
    return script


def require_wrk() -> None:
    """Fail before minutes of set-up when the load generator is missing."""
    if WRK is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (Debian package wrk)")


def wrk(
    base_url: str,
    key: str,
    name: str,
    requests: list[Request],
    connections: int,
    seconds: float,
    warmup_s: float = 3.0,
) -> LoadResult:
    """`wrk` (keep-alive, one thread per core, at most `connections`) for `seconds` over
    `requests`, after an unmeasured warm-up that opens the connections and fills the server's
    pools and caches."""
    threads = max(1, min(connections, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="pulsemart-wrk-") as folder:
        script = wrk_script(requests, Path(folder))

        def run(duration: float) -> dict:
            done = subprocess.run(
                [
                    WRK,
                    "-t",
                    str(threads),
                    "-c",
                    str(connections),
                    "-d",
                    f"{duration:g}s",
                    "--timeout",
                    "10s",
                    "-H",
                    f"X-API-Key: {key}",
                    "-s",
                    str(script),
                    base_url,
                ],
                capture_output=True,
                text=True,
                timeout=duration + 60,
                check=True,
            )
            [line] = [x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")]
            return json.loads(line.removeprefix("WRK_JSON "))

        if warmup_s > 0:
            run(warmup_s)
        load_average = os.getloadavg()
        figures = run(seconds)
    return LoadResult(
        name,
        connections,
        figures["duration_us"] / 1e6,
        figures["requests"],
        figures["bytes"],
        figures["non_2xx"],
        figures["socket_errors"],
        figures["p50_us"] / 1e6,
        figures["p99_us"] / 1e6,
        figures["max_us"] / 1e6,
        load_average,
        figures.get("cache_hits", 0),
        figures.get("cache_stale", 0),
    )


def start_server(
    settings: Settings,
    key: str,
    port: int,
    timeout_s: float = 60,
    cache: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """`pulsemart serve --port PORT --workers WORKERS` (with `--no-cache` unless `cache`) with
    PULSEMART_API_KEY=key and `env`, once /health answers 200."""
    exe = str(Path(sys.executable).parent / "pulsemart")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / "bench-serve.log", "ab") as log:  # the child keeps its own copy
        server = subprocess.Popen(
            [
                exe,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(WORKERS),
                *([] if cache else ["--no-cache"]),
            ],
            env=dict(os.environ, PULSEMART_API_KEY=key, **(env or {})),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

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
    loaded: list[LoadResult]  # under `connections`, response cache on: health first
    single: list[LoadResult]  # one connection: service time without queueing
    uncached: list[LoadResult]  # under `connections`, `pulsemart serve --no-cache`: health first
    workers: int
    propensity_rows: int
    recommender_version: str | None  # the deployed recommender; None: the trending fallback only


def seed_propensity(settings: Settings) -> int:
    """A deployed propensity version with a synthetic score for every customer in the serving
    tables, so the propensity read finds its row (the ML platform writes real ones)."""
    with connect_migrated(settings) as conn:
        conn.execute(
            "insert into serving.model_deployments (model_name, model_version, deployed_by) "
            "values (%s, 'bench', 'pulsemart bench') on conflict (model_name) do update set "
            "model_version = excluded.model_version",
            (PROPENSITY,),
        )
        conn.execute("delete from serving.propensity_scores where model_name = %s", (PROPENSITY,))
        rows = conn.execute(
            "insert into serving.propensity_scores (model_name, model_version, customer_key, score) "
            "select %s, 'bench', governance.keyed_hash(customer_id), "
            "(abs(hashtext(customer_id)) %% 1000) / 1000.0 from serving.customer_profile",
            (PROPENSITY,),
        ).rowcount
        conn.commit()
    return rows


def deployed_version(settings: Settings, model_name: str) -> str | None:
    with connect_migrated(settings) as conn:
        row = conn.execute(
            "select model_version from serving.model_deployments where model_name = %s",
            (model_name,),
        ).fetchone()
    return row[0] if row else None


def api_load(
    settings: Settings, connections: int, seconds: float, single_seconds: float, seed: int, echo
) -> ApiResult:
    require_wrk()
    search, recs, session_recs = mixes_from_store(settings, seed)
    propensity = [(path.removesuffix("/recommendations"), {}) for path, _ in recs]
    propensity_rows = seed_propensity(settings)
    recommender = deployed_version(settings, RECOMMENDER)
    endpoints = (
        ("GET /health (anchor)", [("/health", {})]),
        ("GET /products/search", search),
        ("GET /customers/{id}/recommendations?k=10", recs),
        ("GET /customers/{id}/recommendations?k=10&session_id=S", session_recs),
        ("GET /customers/{id} (propensity)", propensity),
    )
    key = secrets.token_urlsafe(24)
    loaded, single, uncached = [], [], []
    for cache, results in ((True, loaded), (False, uncached)):
        port = free_port()
        server = start_server(settings, key, port, cache=cache)
        base = f"http://127.0.0.1:{port}"
        try:
            for name, requests in endpoints:
                echo(
                    f"  {name}{'' if cache else ' (no cache)'}: {connections} connections for {seconds:g} s"
                )
                results.append(wrk(base, key, name, requests, connections, seconds))
            if cache and single_seconds > 0:
                for name, requests in endpoints:
                    echo(f"  {name}: 1 connection for {single_seconds:g} s")
                    single.append(wrk(base, key, name, requests, 1, single_seconds, warmup_s=1.0))
        finally:
            stop(server)
    return ApiResult(loaded, single, uncached, WORKERS, propensity_rows, recommender)
