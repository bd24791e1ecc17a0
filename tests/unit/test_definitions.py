"""The Dagster code location: loads, validates, and keeps its asset graph honest."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from orchestration.definitions import defs

ROOT = Path(__file__).resolve().parents[2]

# The asset graph as reviewed: a change to it must change this snapshot on purpose.
EXPECTED_GRAPH = {
    "kafka/shop_catalog": [],
    "kafka/shop_events": [],
    "raw/shop_catalog": ["kafka/shop_catalog"],
    "raw/shop_events": ["kafka/shop_events"],
    "quality/events_clean": ["raw/shop_catalog", "raw/shop_events"],
    "quality/order_lines_clean": ["quality/events_clean"],
    "quality/quarantine": ["raw/shop_catalog", "raw/shop_events"],
    "serving/product_state": ["quality/events_clean", "quality/order_lines_clean"],
    "serving/customer_profile": ["quality/events_clean", "quality/order_lines_clean"],
    "serving/trending": ["quality/events_clean", "quality/order_lines_clean"],
    "serving/session_funnel": ["quality/events_clean"],
}


def asset_graph() -> dict:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): sorted(parent.to_user_string() for parent in graph.get(key).parent_keys)
        for key in graph.get_all_asset_keys()
    }


def test_asset_graph_snapshot():
    assert asset_graph() == EXPECTED_GRAPH


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
    assert set(sensors) == {"kafka_shop_events_sensor", "kafka_shop_catalog_sensor", "quality_sensor",
                            "serving_sensor"}
    assert sensors["kafka_shop_events_sensor"].job_name == "ingest_shop_events"


def test_dagster_definitions_validate():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_local_instance_config_loads(tmp_path):
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    limits = {(limit["key"], str(limit.get("value"))): limit["limit"]
              for limit in instance.run_coordinator.get_run_queue_config().tag_concurrency_limits}
    assert limits[("pulsemart/pool", "ingest")] == 4
    assert limits[("pulsemart/topic_partition", "{'applyLimitPerUniqueValue': True}")] == 1
