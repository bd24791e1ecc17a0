"""The real-time lane in Dagster: a worker reports runless materializations of the raw, quality
and serving assets and evaluations of the quality checks to a real Dagster webserver, and
they are read back through the Dagster instance behind it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import httpx
import pytest

from tests.integration.helpers import free_port
from tests.integration.realtime_support import ROOT, simulate, spawn_worker, stored_total, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENTS_CLEAN = dg.AssetKey(["quality", "events_clean"])
RAW_EVENTS = dg.AssetKey(["raw", "shop_events"])
RAW_CATALOG = dg.AssetKey(["raw", "shop_catalog"])


@pytest.fixture
def webserver(tmp_path):
    """dagster-webserver over the streaming code location, with an instance of its own."""
    home = tmp_path / "dagster"
    home.mkdir()
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home), PYTHONPATH=str(ROOT))
    bin_dir = Path(sys.executable).parent
    with open(tmp_path / "webserver.log", "wb") as log:
        process = subprocess.Popen(
            [
                str(bin_dir / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-m",
                "orchestration.streaming",
                "-a",
                "defs",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return httpx.get(f"{url}/server_info", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, 120, "the Dagster webserver", interval_s=1)
        yield url, home
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


def test_worker_reports_materializations_and_checks_to_dagster(
    lane_for_dagster, db, webserver, tmp_path, monkeypatch
):
    url, home = webserver
    worker = spawn_worker(tmp_path / "worker.log", PULSEMART_DAGSTER_URL=url)
    try:
        assert simulate(2_000, rate=None, seed=21).wait(60) == 0
        wait_for(lambda: stored_total(db) == (2_000, 2_000), 90, "the worker to catch up")
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            # Windows are reported every second, asynchronously: wait until every record has
            # been reported, then stop the worker and read again (its last report must not add
            # any record a second time).
            found, checks = wait_for(
                lambda: _reported(instance, complete_at=2_000),
                60,
                lambda: f"every record reported: {_reported(instance)}",
                interval_s=1,
            )
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(15) == 0
            found, checks = _reported(instance)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
    # Runless: no run behind any of them.
    assert all(
        r.run_id == "" for records in found.values() for r in records
    )  # Dagster's runless id
    for record in found[RAW_EVENTS]:
        metadata = record.asset_materialization.metadata
        assert {
            "records",
            "offset_ranges",
            "lag",
            "batch_seconds_p50",
            "batch_seconds_p95",
            "freshness_seconds_p95",
        } <= set(metadata)
    assert _records(found) == 2_000  # every record reported once, aggregated over windows
    decisions = found[EVENTS_CLEAN][0].asset_materialization.metadata
    assert {"accepted", "fixed", "quarantined", "held", "rule_counts"} <= set(decisions)
    for name, by_key in checks.items():
        assert by_key[dg.AssetCheckKey(EVENTS_CLEAN, name)].status.value == "SUCCEEDED", name


def _records(found: dict) -> int:
    return sum(
        r.asset_materialization.metadata["records"].value
        for key in (RAW_EVENTS, RAW_CATALOG)
        for r in found[key]
    )


def _reported(instance, complete_at: int | None = None):
    """(materializations by key, check executions by name); with `complete_at`, None until
    every key and check has been reported and the raw materializations count that many records."""
    checks = {
        name: instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(EVENTS_CLEAN, name)]
        )
        for name in ("contract", "conservation")
    }
    keys = [RAW_EVENTS, RAW_CATALOG, EVENTS_CLEAN, dg.AssetKey(["serving", "product_state"])]
    found = {key: instance.fetch_materializations(key, limit=500).records for key in keys}
    if complete_at is None:
        return found, checks
    done = all(found.values()) and all(checks.values()) and _records(found) >= complete_at
    return (found, checks) if done else None


@pytest.fixture
def lane_for_dagster(fresh_stream, db):
    db.execute(
        "truncate serving.product_state, serving.customer_profile, serving.trending, "
        "serving.session_funnel, serving.progress"
    )
    db.commit()
    return fresh_stream
