"""An online experiment in the demo: the champion against popularity, 50/50, from the first
minutes of `pulsemart up` at its default trickle.

`pulsemart up` runs in a temporary home with its simulated shoppers reacting to the API's
recommendations (pulsemart/stream/simulator/reactions.py). As soon as the bootstrap has
deployed the first champion, the benchmark starts `pulsemart model experiment start
pulsemart-recommender --challenger popularity --share 0.5` (through the same core), then reads
the experiment every few minutes until `minutes` after the demo started. CTR is the share of
exposures whose shown products were viewed with the response's recommendation_id within 30
minutes (the datamart's rule, fct_recommendation_outcomes), read here straight from
quality.events_clean so each checkpoint needs no dbt build; intervals are Wilson's, and the
difference's the unpooled normal one with the pooled z-test (ml/experiment_stats.py). The
anchor is the popularity arm, measured in the same run on the same shoppers. The demo's
Dagster runs the experiment readout every 15 minutes, and its guardrail stops an experiment
whose challenger converts significantly worse: from then on the figures no longer grow, and
the status column says who stopped it and why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import psycopg

from ml.experiment_stats import compare_rates, wilson
from ml.names import RECOMMENDER
from pulsemart.config import load_settings
from pulsemart.ml_store.experiments import POPULARITY, start
from pulsemart.store.db import connect_migrated
from pulsemart.store.rows import one_row
from pulsemart_bench import machine
from pulsemart_bench.report import Section, Table, fmt_int
from pulsemart_bench.stack import free_port

CLICKS = """
with exposures as (
    select payload ->> 'recommendation_id' as rid, payload ->> 'variant' as variant,
           event_time as exposed_at,
           jsonb_path_query_array(payload -> 'items', '$[*].product_id') as shown
    from quality.events_clean
    where event_type = 'recommendation_exposed'
      and (payload ->> 'experiment_id')::bigint = %(experiment)s
), clicked as (
    select distinct e.rid
    from exposures e
    join quality.events_clean v
      on v.event_type = 'product_viewed'
     and v.payload ->> 'recommendation_id' = e.rid
     and e.shown ? v.product_id
     and v.event_time between e.exposed_at - interval '5 seconds'
                          and e.exposed_at + interval '30 minutes'
)
select e.variant, count(*), count(c.rid)
from exposures e left join clicked c using (rid)
group by e.variant
"""


def _wait_for_champion(conn: psycopg.Connection, deadline: float, echo) -> str | None:
    while time.monotonic() < deadline:
        row = conn.execute(
            "select model_version from serving.model_deployments where model_name = %s",
            (RECOMMENDER,),
        ).fetchone()
        conn.commit()
        if row:
            return row[0]
        time.sleep(10)
    return None


def _arms(conn: psycopg.Connection, experiment_id: int) -> dict[str, tuple[int, int]]:
    rows = conn.execute(CLICKS, {"experiment": experiment_id}).fetchall()
    conn.commit()
    return {variant: (int(n), int(clicks)) for variant, n, clicks in rows}


def _status(conn: psycopg.Connection, experiment_id: int) -> str:
    """The experiment's status, and who ended it why (the readout's guardrail may)."""
    status, by, why = one_row(
        conn.execute(
            "select status, ended_by, end_reason from serving.experiments where experiment_id = %s",
            (experiment_id,),
        )
    )
    conn.commit()
    return status if by is None else f"{status} by {by}: {why}"


def _row(minute: float, arms: dict[str, tuple[int, int]], status: str) -> list[str]:
    n_a, c_a = arms.get("champion", (0, 0))
    n_b, c_b = arms.get("challenger", (0, 0))
    a, b = wilson(c_a, n_a), wilson(c_b, n_b)
    diff = compare_rates(c_a, n_a, c_b, n_b)

    def rate(i) -> str:
        if i.estimate is None:
            return "n/a"
        return f"{i.estimate:.3f} [{i.low:.3f}, {i.high:.3f}]"

    d = diff.difference
    return [
        f"{minute:.0f}",
        fmt_int(n_a),
        fmt_int(n_b),
        rate(a),
        rate(b),
        "n/a" if d.estimate is None else f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]",
        "n/a" if diff.p_value is None else f"{diff.p_value:.2g}",
        "yes" if d.excludes_zero() and (d.low or 0) > 0 else "no",
        "n/a" if not (b.estimate and a.estimate is not None) else f"{a.estimate / b.estimate:.2f}x",
        status,
    ]


def section(command: str, minutes: float, checkpoint_minutes: float, echo: Callable) -> Section:
    home = tempfile.mkdtemp(prefix="pulsemart-bench-experiment-")
    env = dict(os.environ, PULSEMART_HOME=home, PULSEMART_KAFKA_PORT=str(free_port()))
    for name in ("PULSEMART_DATABASE_URL", "PULSEMART_KAFKA_BOOTSTRAP", "DAGSTER_HOME"):
        env.pop(name, None)
    ui_port, api_port = free_port(), free_port()
    pulsemart = os.path.join(os.path.dirname(sys.executable), "pulsemart")
    up = subprocess.Popen(
        [pulsemart, "up", "--ui-port", str(ui_port), "--api-port", str(api_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = time.monotonic()
    deadline = started + minutes * 60
    rows: list[list[str]] = []
    notes: list[str] = []
    kept = ""
    saved = {k: os.environ.get(k) for k in ("PULSEMART_HOME", "PULSEMART_KAFKA_PORT")}
    os.environ.update(PULSEMART_HOME=home, PULSEMART_KAFKA_PORT=env["PULSEMART_KAFKA_PORT"])
    try:
        time.sleep(20)  # the services come up first
        settings = load_settings()
        with connect_migrated(settings) as conn:
            echo("waiting for the bootstrap's first champion…")
            champion = _wait_for_champion(conn, deadline, echo)
            if champion is None:
                raise RuntimeError(f"no champion was deployed within {minutes:g} minutes")
            deployed_at = (time.monotonic() - started) / 60
            experiment = start(conn, RECOMMENDER, [(POPULARITY, 0.5)], "pulsemart bench experiment")
            conn.commit()
            echo(
                f"champion {champion} deployed at minute {deployed_at:.1f}; experiment "
                f"{experiment.experiment_id} started, 50/50 against {POPULARITY}"
            )
            next_look = time.monotonic() + checkpoint_minutes * 60
            while True:
                now = time.monotonic()
                if now >= min(next_look, deadline):
                    minute = (now - started) / 60
                    eid = experiment.experiment_id
                    rows.append(_row(minute, _arms(conn, eid), _status(conn, eid)))
                    echo(" | ".join(rows[-1]))
                    next_look += checkpoint_minutes * 60
                if now >= deadline:
                    break
                if up.poll() is not None:
                    notes.append(
                        f"`pulsemart up` exited at minute {(now - started) / 60:.1f} "
                        f"(code {up.returncode}); its logs are kept (below)."
                    )
                    break
                time.sleep(5)
            notes.append(
                f"The bootstrap deployed champion version {champion} at minute "
                f"{deployed_at:.1f} of the demo; the experiment ran from then on."
            )
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)
        subprocess.run([pulsemart, "services", "down"], env=env, check=False, capture_output=True)
        # The stack's logs outlive the temporary home, for whoever reads what happened.
        kept = shutil.copytree(
            os.path.join(home, "run"),
            tempfile.mkdtemp(prefix="pulsemart-bench-logs-"),
            dirs_exist_ok=True,
        )
        echo(f"the demo's logs are kept in {kept}")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(home, ignore_errors=True)
    table = Table(
        [
            "minute of the demo",
            "champion exposures",
            "popularity exposures",
            "champion CTR [95% CI]",
            "popularity CTR [95% CI]",
            "difference [95% CI]",
            "p (two-proportion z)",
            "CI excludes zero, champion ahead",
            "champion CTR / popularity CTR",
            "experiment status",
        ],
        rows,
    )
    return Section(
        key="experiment",
        title="Online experiment in the demo: champion against popularity, 50/50",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        tables=[table],
        notes=[*notes, f"The demo's logs of this run: {kept}."],
    )
