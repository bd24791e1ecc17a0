"""Configured secrets never reach logs, run records or Dagster metadata.

The pipeline runs end to end (ingest, quality, serving, the dbt datamart) with a database
password, a Kafka SASL password and an API key set, on a Dagster instance of its own; then
every run's config, tags and event log, dbt's logs and artifacts, and the files under the home
are searched for each secret. (The embedded server trusts local connections, so the password
is carried but not needed: exactly the case where it could leak unnoticed.)
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from orchestration import catch_up as catch_up_module
from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.config import load_settings
from pulsemart.datamart.project import DBT_PROJECT_DIR
from pulsemart.stream.simulator import generate
from tests.integration.helpers import produce_simulated

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DB_PASSWORD = "Db-pw-5f1c9e"
KAFKA_PASSWORD = "Kafka-pw-77b2ad"
API_KEY = "Api-key-0c4e91"


def test_passwords_never_appear_in_logs_runs_or_metadata(
    fresh_stream, db, monkeypatch, tmp_path, capfd
):
    url = db.info.dsn  # the embedded server's connection string, with a password added
    socket_dir = dict(part.split("=", 1) for part in url.split() if "=" in part)["host"]
    monkeypatch.setenv(
        "PULSEMART_DATABASE_URL",
        f"postgresql://postgres:{DB_PASSWORD}@/pulsemart?host={socket_dir}",
    )
    monkeypatch.setenv("PULSEMART_KAFKA_SASL_PASSWORD", KAFKA_PASSWORD)
    monkeypatch.setenv("PULSEMART_API_KEY", API_KEY)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    catch_up_module._instance.cache_clear()
    settings = load_settings()
    assert settings.database_url and DB_PASSWORD in settings.database_url
    assert DB_PASSWORD not in repr(settings) and KAFKA_PASSWORD not in repr(settings)

    events = list(generate(1_000, seed=61))
    produce_simulated(settings, events)
    catch_up(settings, defs, ["shop.catalog", "shop.events"], serve=True, workers=1)
    instance = dg.DagsterInstance.get()
    db.rollback()
    assert defs.resolve_job_def("datamart_build").execute_in_process(instance=instance).success
    catch_up_module._instance.cache_clear()

    runs = instance.get_runs()
    assert len(runs) >= 3
    haystacks = {}
    for run in runs:
        haystacks[f"run {run.job_name} {run.run_id}"] = serialize_value(run) + "".join(
            serialize_value(event) for event in instance.all_logs(run.run_id)
        )
    for path in [
        *(tmp_path / "dagster").rglob("*"),
        *DBT_PROJECT_DIR.joinpath("logs").rglob("*"),
        *DBT_PROJECT_DIR.joinpath("target").glob("*.json"),
        # dagster-dbt's own log of each of this test's dbt invocations (`<op>-<run id[:7]>-*`):
        # the project's logs/dbt.log is shared with the other xdist workers' builds.
        *(
            log
            for run in runs
            for log in DBT_PROJECT_DIR.joinpath("target").glob(f"*-{run.run_id[:7]}-*/dbt.log")
        ),
        *settings.home.rglob("*.log"),
    ]:
        if path.is_file():
            haystacks[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    captured = capfd.readouterr()
    haystacks["stdout/stderr"] = captured.out + captured.err
    assert len(haystacks) > 5
    # The search reads what it should: the runs' metadata and dbt's log are in it.
    assert any("records" in text and "raw/shop_events" in text for text in haystacks.values())
    assert any("fct_order_lines" in text for where, text in haystacks.items() if "dbt.log" in where)
    for secret in (DB_PASSWORD, KAFKA_PASSWORD, API_KEY):
        leaks = [where for where, text in haystacks.items() if secret in text]
        assert leaks == [], f"{secret!r} found in {leaks}"
