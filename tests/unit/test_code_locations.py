"""The two code locations of workspace.yaml: what each holds, how lineage crosses between them,
and that a streaming run never imports the analytics stack."""

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

from orchestration import analytics, streaming

ROOT = Path(__file__).resolve().parents[2]
ANALYTICS_STACK = ("dbt", "dagster_dbt", "mlflow", "sklearn", "ml")
# Loaded by the runs that use them (the rule engine, the clients, the archive), not by every
# process that loads the streaming location: its import stays near a bare `import dagster`.
DEFERRED = ("pandas", "pandera", "pyarrow", "kafka", "psycopg")


def _owned(defs: dg.Definitions) -> list[dg.AssetSpec]:
    """The location's own specs: Dagster adds a stub in the `default` group for each key a
    location depends on but does not define."""
    return [spec for spec in defs.resolve_all_asset_specs() if spec.group_name != "default"]


def _keys(defs: dg.Definitions) -> set[str]:
    return {spec.key.to_user_string() for spec in _owned(defs)}


def test_workspace_yaml_loads_the_two_locations():
    entries = [
        entry["python_module"]
        for entry in yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    ]
    assert {(e["location_name"], e["module_name"], e["attribute"]) for e in entries} == {
        ("streaming", "orchestration.streaming", "defs"),
        ("analytics", "orchestration.analytics", "defs"),
    }


def test_each_location_loads_on_its_own():
    for defs in (streaming.defs, analytics.defs):
        dg.Definitions.validate_loadable(defs)


def test_layers_sit_in_their_location_and_every_asset_in_one():
    groups = {
        name: {spec.group_name for spec in _owned(defs)}
        for name, defs in (("streaming", streaming.defs), ("analytics", analytics.defs))
    }
    assert groups == {
        "streaming": {"ingest", "quality", "serving"},
        "analytics": {"datamart", "ml"},
    }
    assert not _keys(streaming.defs) & _keys(analytics.defs)
    assert {s.name for s in streaming.defs.sensors} == {
        "kafka_shop_events_sensor",
        "kafka_shop_catalog_sensor",
        "kafka_shop_exposures_sensor",
        "quality_sensor",
        "serving_sensor",
    }
    assert {s.name for s in analytics.defs.sensors} == {
        "datamart_automation",
        "ml_drift_sensor",
        "bootstrap_sensor",
    }


def test_analytics_reaches_streaming_by_asset_key():
    graph = analytics.defs.resolve_asset_graph()
    own = {spec.key for spec in _owned(analytics.defs)}
    upstream = {parent for key in own for parent in graph.get(key).parent_keys} - own
    # The dbt sources name the quality layer's keys, which the streaming location materializes.
    assert {key.to_user_string() for key in upstream} == {
        "quality/events_clean",
        "quality/order_lines_clean",
        "quality/quarantine",
    }
    materialized = {
        key
        for key in streaming.defs.resolve_asset_graph().get_all_asset_keys()
        if streaming.defs.resolve_assets_def(key).is_executable
    }
    assert upstream <= materialized


def test_a_streaming_run_imports_no_dbt_and_no_ml():
    # A fresh interpreter, as a run worker of the streaming location starts: load the location
    # and build its jobs, then list what got imported.
    code = (
        "import json, sys\n"
        "from orchestration.streaming import defs\n"
        "for job in defs.resolve_all_job_defs(): job.get_subset\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "dagster" in loaded and "pulsemart" in loaded  # the check sees real imports
    assert not loaded & set(ANALYTICS_STACK), sorted(loaded & set(ANALYTICS_STACK))
    assert not loaded & set(DEFERRED), sorted(loaded & set(DEFERRED))
