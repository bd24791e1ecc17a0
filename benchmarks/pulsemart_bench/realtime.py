"""`bench realtime`: the real-time lane's freshness, cost and catch-up rate.

Freshness and cost come from `pulsemart up` runs (pulsemart_bench.freshness): the real-time
lane at the default trickle, again with 200 events/s of background, and the sensor lane
(`--stream-workers 0`) at the default trickle as the anchor. Catch-up: a backlog of simulated
events (10% dirty) produced first, then one `pulsemart stream` worker timed from its first
commit until every record is decided and folded, beside the rule engine alone on the same
events in this process (`engine_rates.rates`, batches of the worker's maximum).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pulsemart.config import Settings
from pulsemart.store.db import connect_migrated
from pulsemart_bench import freshness, machine
from pulsemart_bench.measure import percentile
from pulsemart_bench.report import Section, Table, fmt_int
from pulsemart_bench.stack import recreate_topics, truncate_store

POLL_S = 0.05  # search polled every 50 ms: the lane's figures are sub-second
BECAUSE = 30  # views probed, one at a time, for the personalization freshness row
LANES = (  # label, `pulsemart up` arguments
    ("real-time lane, default trickle (5 events/s)", ("--rate", "5")),
    ("real-time lane, 200 events/s background", ("--rate", "200")),
    ("sensor lane (--stream-workers 0), default trickle", ("--rate", "5", "--stream-workers", "0")),
)


@dataclass
class CatchUp:
    events: int
    worker_events_per_s: float
    engine_events_per_s: float
    seconds: float


def _exe() -> str:
    return str(Path(sys.executable).parent / "pulsemart")


def _progress(settings: Settings) -> tuple[int, int]:
    with connect_migrated(settings) as conn:
        landed = conn.execute(
            "select coalesce(sum(next_offset), 0) from ingest.offsets"
        ).fetchone()[0]
        decided = conn.execute(
            "select coalesce(sum(next_offset), 0) from quality.progress"
        ).fetchone()[0]
    return int(landed), int(decided)


def catch_up(
    settings: Settings,
    events: int,
    seed: int,
    echo: Callable[[str], None],
    session_state: bool = True,
    engine: float | None = None,
) -> CatchUp:
    """One worker over a backlog of `events`; `engine`: the engine-alone rate if known."""
    from pulsemart.stream.simulator import generate
    from pulsemart_bench.engine_rates import rates

    recreate_topics(settings)
    truncate_store(settings)
    env = dict(
        os.environ,
        PULSEMART_ARCHIVE="off",
        PULSEMART_SESSION_STATE="true" if session_state else "false",
    )
    subprocess.run(
        [_exe(), "simulate", "--events", str(events), "--seed", str(seed), "--dirty-rate", "0.1"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=3600,
    )
    echo(f"  catch-up: {fmt_int(events)} events produced; worker starting")
    with open(settings.run_dir / "bench-stream.log", "ab") as log:
        worker = subprocess.Popen([_exe(), "stream"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while (first := _progress(settings))[0] == 0:  # the group join is not catch-up time
            time.sleep(0.1)
        started = time.monotonic()
        while _progress(settings)[1] < events:
            if worker.poll() is not None:
                raise RuntimeError(
                    f"the worker exited; see {settings.run_dir / 'bench-stream.log'}"
                )
            time.sleep(0.2)
        seconds = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(30)
    worker_rate = (events - first[0]) / seconds
    echo(f"  catch-up: worker {worker_rate:,.0f} events/s (session state {session_state})")
    if engine is None:
        engine = rates(
            list(generate(events, seed, dirty_rate=0.1)), batch_size=settings.realtime_max_records
        )[0]["engine_events_per_s"]
    return CatchUp(events, worker_rate, engine, seconds)


def _s(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "—"


def section(
    settings: Settings,
    command: str,
    seconds: float,
    rate: float,
    events: int,
    seed: int,
    echo: Callable[[str], None],
) -> Section:
    rows, results = [], []
    for label, up_args in LANES:
        echo(f"bench realtime: {label}: {rate:g} price changes/s for {seconds:g} s")
        try:
            fresh = freshness.freshness(
                settings, seconds, rate, up_args=up_args, poll_s=POLL_S, because_probes=BECAUSE
            )
        finally:
            freshness.restart_services(settings)  # `pulsemart up` stopped them on exit
        results.append(fresh)
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        rows.append(
            [
                label,
                f"{fmt_int(fresh.seen)} / {fmt_int(fresh.produced)}",
                _s(percentile(fresh.visible_s, 50)),
                _s(percentile(fresh.visible_s, 95)),
                _s(max(fresh.visible_s) if fresh.visible_s else None),
                f"{fresh.cores:.2f}" if fresh.cores is not None else "—",
                load,
            ]
        )
    anchor = percentile(results[-1].visible_s, 95)
    for row, fresh in zip(rows, results, strict=True):
        p95 = percentile(fresh.visible_s, 95)
        row.insert(5, f"{p95 / anchor:.3f}" if p95 is not None and anchor else "—")
    table = Table(
        [
            "Lane (`pulsemart up` with)",
            "Probes seen / sent",
            "p50 s",
            "p95 s",
            "max s",
            "p95 ÷ sensor lane's",
            "Machine cores",
            "Load average after",
        ]
    )
    table.rows = rows
    tables = [table]
    notes = [
        (
            f"Freshness: produce → new price visible in `/products/search`, polled every {POLL_S * 1000:.0f} ms "
            f"(so figures carry up to {POLL_S * 1000:.0f} ms of polling delay). {rate:g} `price_changed` probes/s "
            f"for {seconds:g} s after 50 probe products were upserted and seen (warm-up). The background trickle "
            "is `pulsemart up`'s own simulator process (`--rate`), outside the measured processes."
        ),
        (
            "Machine cores: the whole machine's busy CPU seconds per second over the probe window (total less "
            "idle and I/O wait, from /proc/stat): `pulsemart up` (Dagster webserver, daemon and the runs it "
            "launches, serving API, worker, simulator), the broker, PostgreSQL and its backends, and this "
            "benchmark's own producer and poller; the probes add their 1-2 events/s. Only a quiet machine "
            "makes it the stack's cost: see the load average."
        ),
        (
            "Each row's load average tells whether other work shared the machine; figures taken under "
            "load are slower than on an idle machine."
        ),
    ]
    targets = [
        f"p95 ≤ 1 s: {'met' if (p := percentile(f.visible_s, 95)) is not None and p <= 1 else 'NOT met'} "
        f"({label})"
        for (label, _), f in zip(LANES[:2], results, strict=False)
    ]
    because = Table(
        [
            "Lane (`pulsemart up` with)",
            "Views seen / sent",
            "p50 s",
            "p95 s",
            "max s",
            "p95 ÷ price p95 of the same run",
        ]
    )
    for (label, _), fresh in zip(LANES, results, strict=True):
        p95 = percentile(fresh.because_s, 95)
        price_p95 = percentile(fresh.visible_s, 95)
        because.rows.append(
            [
                label,
                f"{len(fresh.because_s)} / {fresh.because_sent}",
                _s(percentile(fresh.because_s, 50)),
                _s(p95),
                _s(max(fresh.because_s) if fresh.because_s else None),
                f"{p95 / price_p95:.3f}" if p95 is not None and price_p95 else "—",
            ]
        )
    tables.append(because)
    notes.append(
        f"Personalization freshness: right after each lane's price probes, under the same "
        f"`pulsemart up`, {BECAUSE} `product_viewed` events, one at a time, each by a new customer "
        "in a new session; from produce to the first `GET /customers/{id}/recommendations"
        "?session_id=` (polled every 50 ms) whose items name the viewed product in `because`. "
        "The probe products carry a deployed neighbour list of their own (bench home only)."
    )
    targets += [
        f"personalization p95 ≤ 1 s: "
        f"{'met' if (p := percentile(f.because_s, 95)) is not None and p <= 1 else 'NOT met'} "
        f"({label})"
        for (label, _), f in zip(LANES[:2], results, strict=False)
    ]
    notes.append(
        "Targets: " + "; ".join(targets) + f"; machine under one busy core at the default trickle: "
        f"{'met' if results[0].cores is not None and results[0].cores < 1 else 'NOT met'}."
    )
    if events:
        echo(f"bench realtime: catch-up over {fmt_int(events)} events")
        up = catch_up(settings, events, seed, echo)
        bare = catch_up(
            settings, events, seed, echo, session_state=False, engine=up.engine_events_per_s
        )
        catch = Table(
            ["Catch-up over simulated events (10% dirty)", "Events", "events/s", "÷ engine alone"]
        )
        catch.rows = [
            [
                (
                    "rule engine alone, in-process, same events, batches of "
                    f"{fmt_int(settings.realtime_max_records)} (anchor)"
                ),
                fmt_int(up.events),
                fmt_int(up.engine_events_per_s),
                "1.000",
            ],
            [
                (
                    "one `pulsemart stream` worker: Kafka → raw → decide → serving, one transaction "
                    "per micro-batch"
                ),
                fmt_int(up.events),
                fmt_int(up.worker_events_per_s),
                f"{up.worker_events_per_s / up.engine_events_per_s:.3f}",
            ],
            [
                "the same worker with `PULSEMART_SESSION_STATE=false` (no session state)",
                fmt_int(bare.events),
                fmt_int(bare.worker_events_per_s),
                f"{bare.worker_events_per_s / bare.engine_events_per_s:.3f}",
            ],
        ]
        tables.append(catch)
        notes.append(
            f"Catch-up: timed from the worker's first commit (its group join excluded) to the last "
            f"record decided, {up.seconds:.1f} s; archive off. Target ≥ 0.8× the engine alone: "
            f"{'met' if up.worker_events_per_s >= 0.8 * up.engine_events_per_s else 'NOT met'}. "
            f"Session state costs {1 - up.worker_events_per_s / bare.worker_events_per_s:+.1%} of "
            "the catch-up rate without it (target within 10%: "
            f"{'met' if up.worker_events_per_s >= 0.9 * bare.worker_events_per_s else 'NOT met'})."
        )
    return Section(
        key="realtime",
        title="Real-time lane: freshness, cost and catch-up",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=(
            "The real-time lane (`pulsemart stream` workers, one transaction per micro-batch) "
            "beside the sensor lane in the same run; see docs/lanes.md."
        ),
        tables=tables,
        notes=notes,
    )
