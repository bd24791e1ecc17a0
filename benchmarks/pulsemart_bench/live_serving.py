"""`bench serving`, the headline: the API as a shop meets it, under `pulsemart up` with the
trickle on, over requests as distinct as real traffic.

For each background rate (`pulsemart up`'s default trickle, then `--rate 200`): `pulsemart up`
in the bench's home; `preload` simulated events produced from outside and folded; a recommender
and a propensity version deployed with a score for every known customer (synthetic, written as
a scored version writes them, so each recommendation reads the model path); then wrk from
outside the measured processes with keep-alive connections: `/health` (the anchor, same run),
then a shuffled mix of every known customer's recommendations (with their latest session
where they have one) and propensity, and searches drawn over the categories and price ranges.
The trickle keeps folding throughout, so the response cache loses entries as the data under
them changes; `X-Cache` counts its hits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ml.names import RECOMMENDER
from pulsemart.config import Settings
from pulsemart.local.processes import wait_until
from pulsemart.store.db import connect_migrated
from pulsemart.stream.simulator import generate
from pulsemart_bench import api_profile
from pulsemart_bench.freshness import _pulsemart_up, restart_services, wait_for_up
from pulsemart_bench.process_cpu import ProcessCpu
from pulsemart_bench.serving import (
    LoadResult,
    Request,
    require_wrk,
    search_mix,
    seed_propensity,
    stop,
    wrk,
)
from pulsemart_bench.stack import free_port, recreate_topics, truncate_store
from pulsemart_bench.stack_cpu import MachineCpu

VERSION = "bench-live"
TOP_N = 20  # scored products per customer, as the scoring keeps


@dataclass
class LiveRun:
    label: str
    health: LoadResult
    mix: LoadResult
    distinct: int
    folded_during: int  # events the fold took in while the mix ran
    customers: int
    cores: float | None  # whole machine, over the mix's run
    profile: api_profile.Profile | None = None  # a second pass of the mix under py-spy
    # Busy cores per part of the stack (process_cpu.py), over /health's run and the mix's.
    health_roles: dict[str, float] | None = None
    mix_roles: dict[str, float] | None = None
    # Each read route's part of the mix at one connection: a lone shopper's service time.
    single: list[LoadResult] = field(default_factory=list)


SINGLE_S = 5.0  # seconds per route at one connection
QUIET_CORES = 1.0  # busy cores under which the stack counts as back to its trickle
ROUTES: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("GET /customers/{id}/recommendations", lambda path: path.endswith("/recommendations")),
    (
        "GET /customers/{id} (propensity)",
        lambda path: path.startswith("/customers/") and not path.endswith("/recommendations"),
    ),
    ("GET /products/search", lambda path: path.startswith("/products/search")),
)


def deploy_synthetic_recommender(settings: Settings) -> int:
    """A deployed recommender version with TOP_N scored products per known customer and ten
    neighbours per product, drawn by a hash (deterministic), written as scoring writes them."""
    with connect_migrated(settings) as conn, conn.transaction():
        for table in ("recommendations", "item_neighbours"):
            conn.execute(
                f"delete from serving.{table} where model_name = %s",  # noqa: S608 - constant names
                (RECOMMENDER,),
            )
        rows = conn.execute(
            "insert into serving.recommendations "
            "(model_name, model_version, customer_key, product_id, rank, score) "
            "select %s, %s, governance.keyed_hash(c.customer_id), p.product_id, p.rank, "
            "1.0 / p.rank from serving.customer_profile c cross join lateral ("
            "  select product_id, row_number() over (order by md5(c.customer_id || product_id)) "
            "  as rank from serving.product_state where unit_price > 0"
            "  order by md5(c.customer_id || product_id) limit %s) p",
            (RECOMMENDER, VERSION, TOP_N),
        ).rowcount
        conn.execute(
            "insert into serving.item_neighbours "
            "(model_name, model_version, product_id, rank, neighbour_id, score) "
            "select %s, %s, a.product_id, n.rank, n.product_id, 1.0 / n.rank "
            "from serving.product_state a cross join lateral ("
            "  select product_id, row_number() over (order by md5(a.product_id || product_id)) "
            "  as rank from serving.product_state where product_id <> a.product_id"
            "  order by md5(a.product_id || product_id) limit 10) n",
            (RECOMMENDER, VERSION),
        )
        conn.execute(
            "insert into serving.model_deployments (model_name, model_version, deployed_by) "
            "values (%s, %s, 'pulsemart bench') on conflict (model_name) do update set "
            "model_version = excluded.model_version, deployed_by = excluded.deployed_by",
            (RECOMMENDER, VERSION),
        )
    return rows


def live_mix(settings: Settings, seed: int, searches: int = 1000) -> list[Request]:
    """Every known customer's recommendations (with their latest session where they have one)
    and propensity, and `searches` searches, shuffled."""
    with connect_migrated(settings) as conn:
        customers = conn.execute(
            "select c.customer_id, (select s.session_id from serving.session_funnel s "
            "where s.customer_id = c.customer_id order by s.last_event_time desc nulls last "
            "limit 1) from serving.customer_profile c order by 1"
        ).fetchall()
        categories = [
            r[0]
            for r in conn.execute(
                "select distinct category from serving.product_state where category is not null"
                " order by 1"
            )
        ]
        products = conn.execute(
            "select product_id, description, unit_price from serving.product_state "
            "where unit_price is not null order by product_id"
        ).fetchall()
    mix: list[Request] = []
    for customer, session in customers:
        params: dict = {"k": 10} if session is None else {"k": 10, "session_id": session}
        mix.append((f"/customers/{customer}/recommendations", params))
        mix.append((f"/customers/{customer}", {}))
    mix += search_mix(
        categories,
        [p[2] for p in products],
        [p[1] for p in products],
        [p[0] for p in products],
        searches,
        seed,
    )
    random.Random(seed).shuffle(mix)
    return mix


def _trickle_active(settings: Settings, since: datetime) -> bool:
    """Whether an event of the trickle's shoppers dated after `since` has been folded (the
    preload is dated in the simulator's past; the trickle's events now)."""
    with connect_migrated(settings) as conn:
        row = conn.execute(
            "select exists (select 1 from quality.events_clean e "
            "where e.event_time > %s and e.event_type in ('product_viewed', 'cart_updated', "
            "'search_performed', 'order_placed') "
            "and e.quality_batch_id <= (select quality_batch_id from serving.progress))",
            (since,),
        ).fetchone()
    return bool(row and row[0])


def _wait_quiet(window_s: float = 2.0, limit_s: float = 90.0) -> float:
    """Seconds until the machine's busy cores over `window_s` fall under QUIET_CORES (at most
    `limit_s`)."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        cpu = MachineCpu()
        time.sleep(window_s)
        if cpu.cores() < QUIET_CORES:
            break
    return time.monotonic() - started


def _folded(settings: Settings) -> int:
    with connect_migrated(settings) as conn:
        row = conn.execute("select events_folded from serving.progress").fetchone()
    return int(row[0]) if row else 0


def live_run(
    settings: Settings,
    label: str,
    up_args: tuple[str, ...],
    preload: int,
    connections: int,
    seconds: float,
    seed: int,
    echo: Callable[[str], None],
    startup_timeout_s: float = 240,
    profile_seconds: float = 0,
) -> LiveRun:
    from pulsemart.stream.producer import ProducedEvent, make_producer, produce_events

    recreate_topics(settings)
    truncate_store(settings)
    ui_port, api_port = free_port(), free_port()
    trickle_since = datetime.now(UTC)  # the trickle dates its events now (`--live`)
    up = _pulsemart_up(settings, ui_port, api_port, up_args)
    try:
        key = wait_for_up(settings, up, ui_port, api_port, startup_timeout_s)
        echo(f"  {label}: {preload:,} simulated events produced, then folded")
        producer = make_producer(settings)
        try:
            produce_events(
                producer,
                (ProducedEvent(e.topic, e.key, e.value) for e in generate(preload, seed)),
                flush_timeout_s=120,
            )
        finally:
            producer.close(timeout=10)
        # Most of them: a tenth of the simulator's events are dirty and quarantined.
        wait_until(
            lambda: _folded(settings) >= 0.8 * preload or up.poll() is not None,
            startup_timeout_s,
            "the preloaded events in serving.progress",
            interval_s=1.0,
        )
        # The trickle starts by announcing its whole catalog (a product_upserted per product,
        # 40 s at 5 events/s) before any shopper acts: a start-up burst of catalog changes,
        # each emptying the cache of every recommendation, that a shop's steady state does
        # not have. The load waits until the trickle's shoppers are folded.
        wait_until(
            lambda: _trickle_active(settings, trickle_since) or up.poll() is not None,
            startup_timeout_s,
            "the trickle's activity past its catalog announcement, in serving.progress",
            interval_s=1.0,
        )
        recommendations = deploy_synthetic_recommender(settings)
        seed_propensity(settings)
        mix = live_mix(settings, seed)
        distinct = len({(path, tuple(sorted(params.items()))) for path, params in mix})
        customers = sum(1 for path, _ in mix if path.endswith("/recommendations"))
        echo(
            f"  {label}: {recommendations:,} scored rows deployed; {distinct:,} distinct "
            f"requests; /health then the mix, {connections} connections for {seconds:g} s each"
        )
        base = f"http://127.0.0.1:{api_port}"
        roles = ProcessCpu()
        health = wrk(base, key, "GET /health (anchor)", [("/health", {})], connections, seconds)
        health_roles = roles.cores()
        before, cpu, roles = _folded(settings), MachineCpu(), ProcessCpu()
        started = time.monotonic()
        loaded = wrk(base, key, "live mix", mix, connections, seconds, warmup_s=0)
        cores, mix_roles = cpu.cores(), roles.cores()
        folded = _folded(settings) - before
        echo(
            f"  {label}: {loaded.answered / loaded.seconds:,.0f} req/s, hit rate "
            f"{loaded.hit_rate or 0:.0%} ({loaded.stale_rate or 0:.0%} stale), {folded:,} "
            f"events folded in {time.monotonic() - started:.0f} s"
        )
        profile = None
        if profile_seconds > 0:
            profile = _profiled_pass(settings, up.pid, base, key, mix, connections, profile_seconds)
            echo(f"  {label}: {profile.samples:,} py-spy samples of the API in {profile.path}")
        # A lone shopper's figures need the load's wake gone: the exposures the mix set off are
        # still being decided for a while after it.
        quiet_s = _wait_quiet()
        echo(f"  {label}: the machine back under {QUIET_CORES:g} busy cores after {quiet_s:.0f} s")
        single = [
            wrk(
                base,
                key,
                f"{route}, one connection",
                [r for r in mix if wanted(r[0])],
                1,
                SINGLE_S,
                warmup_s=0,
            )
            for route, wanted in ROUTES
        ]
        return LiveRun(
            label,
            health,
            loaded,
            distinct,
            folded,
            customers,
            cores,
            profile,
            health_roles,
            mix_roles,
            single,
        )
    finally:
        stop(up, timeout_s=90)


def _profiled_pass(
    settings: Settings, up_pid: int, base: str, key: str, mix, connections: int, seconds: float
) -> api_profile.Profile:
    """The mix again, for `seconds`, with py-spy sampling the API's processes: apart from the
    measured pass, so the sampler's cost is in no figure."""
    serve = api_profile.serve_process(up_pid)
    if serve is None:
        raise RuntimeError("no `pulsemart serve` process under `pulsemart up` to profile")
    out = settings.run_dir / "bench-api-profile.txt"
    spy = api_profile.start(serve, seconds, out)
    try:
        wrk(base, key, "live mix (profiled)", mix, connections, seconds, warmup_s=0)
        _, err = spy.communicate(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
    if spy.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {err.strip()[-500:]}")
    return api_profile.summarize(out)


def live_runs(
    settings: Settings,
    preload: int,
    connections: int,
    seconds: float,
    seed: int,
    echo: Callable[[str], None],
    rates: tuple[float | None, ...] = (None, 200.0),
    profile_seconds: float = 0,
) -> list[LiveRun]:
    """One run per background rate (None: `pulsemart up`'s default trickle), the first with a
    profiled pass of `profile_seconds` (0: none); the embedded services are started again
    afterwards (`pulsemart up` stops them when it exits)."""
    require_wrk()
    runs = []
    try:
        for rate in rates:
            label = "default trickle" if rate is None else f"{rate:g} events/s"
            up_args = () if rate is None else ("--rate", f"{rate:g}")
            runs.append(
                live_run(
                    settings,
                    label,
                    up_args,
                    preload,
                    connections,
                    seconds,
                    seed,
                    echo,
                    profile_seconds=0 if runs else profile_seconds,
                )
            )
            restart_services(settings)
    except BaseException:
        try:
            restart_services(settings)
        except Exception as exc:  # noqa: BLE001 - the run's failure is the one to raise
            echo(f"  could not restart the services: {exc}")
        raise
    return runs
