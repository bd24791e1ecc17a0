"""The Dagster code location: loads, validates, and keeps its asset graph honest."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg

from orchestration.definitions import defs

ROOT = Path(__file__).resolve().parents[2]


def dbt_models() -> list[str]:
    """The datamart's models and snapshots as dbt parsed them, named as Dagster assets."""
    manifest = json.loads((ROOT / "dbt_project/target/manifest.json").read_text())
    return sorted(
        f"datamart/{node['name']}"
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "snapshot")
    )


DATAMART_MODELS = dbt_models()


def asset_graph() -> dict:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): sorted(
            parent.to_user_string() for parent in graph.get(key).parent_keys
        )
        for key in graph.get_all_asset_keys()
    }


def test_asset_graph_snapshot(snapshot):
    # The graph as reviewed, in tests/unit/__snapshots__/: a change to it must be accepted on
    # purpose (`pytest tests/unit/test_definitions.py --snapshot-update`, then review the diff).
    assert asset_graph() == snapshot


def test_every_asset_has_owner_kinds_description_and_layer_tags():
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.to_user_string()
        assert spec.owners, name
        assert spec.kinds, name
        assert spec.description, name
        assert {"layer", "lane"} <= set(spec.tags), name
        assert spec.group_name in {"ingest", "quality", "serving", "datamart", "ml"}, name


def test_topics_are_external_assets_in_the_ingest_group():
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for topic in ("kafka/shop_events", "kafka/shop_catalog"):
        assert specs[topic].group_name == "ingest"
        assert not defs.resolve_assets_def(dg.AssetKey.from_user_string(topic)).is_executable


def test_one_sensor_per_topic_targets_its_ingest_job():
    sensors = {sensor.name: sensor for sensor in defs.sensors}
    assert set(sensors) == {
        "kafka_shop_events_sensor",
        "kafka_shop_catalog_sensor",
        "kafka_shop_exposures_sensor",
        "quality_sensor",
        "serving_sensor",
        "datamart_automation",
        "ml_drift_sensor",
        "bootstrap_sensor",
    }
    assert sensors["kafka_shop_events_sensor"].job_name == "ingest_shop_events"


def test_dagster_definitions_validate():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_local_instance_config_loads(tmp_path):
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    limits = {
        (limit["key"], str(limit.get("value"))): limit["limit"]
        for limit in instance.run_coordinator.get_run_queue_config().tag_concurrency_limits
    }
    assert limits[("pulsemart/pool", "ingest")] == 4
    assert limits[("pulsemart/topic_partition", "{'applyLimitPerUniqueValue': True}")] == 1
    assert limits[("pulsemart/pool", "datamart")] == 1


def test_every_run_that_builds_dbt_models_queues_in_the_datamart_pool():
    from orchestration.defs.datamart.assets import AUTOMATION, DBT_KEYS

    dbt_keys = set(DBT_KEYS)
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):
            continue
        if dbt_keys & set(job.asset_layer.selected_asset_keys):
            assert job.tags.get("pulsemart/pool") == "datamart", job.name
    assert AUTOMATION.run_tags == {"pulsemart/pool": "datamart"}


def test_dbt_models_are_datamart_assets_built_on_the_five_minute_cron():
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for name in DATAMART_MODELS:
        spec = specs[name]
        assert spec.group_name == "datamart", name
        assert {"dbt", "postgres"} <= set(spec.kinds), name
        assert spec.automation_condition is not None, name
        assert "*/5 * * * *" in str(spec.automation_condition), name


def test_marts_holding_customer_keys_carry_the_pii_tag():
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    pii = {name for name in DATAMART_MODELS if "pii" in specs[name].tags}
    assert {
        "datamart/fct_order_lines",
        "datamart/dim_customer",
        "datamart/customer_rfm",
        "datamart/fct_sessions",
        "datamart/stg_events",
    } <= pii
    assert "datamart/dim_date" not in pii and "datamart/agg_sales_daily" not in pii


def test_dbt_tests_are_asset_checks_including_line_conservation():
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}"
        for key in defs.resolve_asset_graph().asset_check_keys
    }
    assert "datamart/fct_order_lines:assert_order_lines_conserved" in checks
    assert "datamart/fct_order_lines:unique_fct_order_lines_order_line_key" in checks
    assert len([c for c in checks if c.startswith("datamart/")]) >= 40


def test_daily_full_build_schedule_refreshes_every_model():
    schedule = defs.resolve_schedule_def("datamart_daily_full_build")
    job = defs.resolve_job_def(schedule.job_name)
    assert schedule.cron_schedule == "30 2 * * *"
    assert set(job.asset_layer.executable_asset_keys) >= {
        dg.AssetKey.from_user_string(k) for k in DATAMART_MODELS
    }
