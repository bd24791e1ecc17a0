"""The dbt project's static qualities: lint-clean SQL, documented models, no secrets in files."""

import json
import subprocess
import sys
from pathlib import Path

from pulsemart.config import load_settings
from pulsemart.datamart.project import DBT_PROJECT_DIR, MANIFEST, dbt_env

SQLFLUFF = Path(sys.executable).parent / "sqlfluff"


def test_sql_is_sqlfluff_clean():
    result = subprocess.run(
        [str(SQLFLUFF), "lint", "--disable-progress-bar", "."],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_every_model_and_column_in_the_marts_is_described_or_tested():
    manifest = json.loads(MANIFEST.read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) >= 18
    undocumented = [m["name"] for m in models if not m["description"].strip()]
    assert undocumented == []
    tested = {
        dep
        for n in manifest["nodes"].values()
        if n["resource_type"] == "test"
        for dep in n["depends_on"]["nodes"]
    }
    marts = [m for m in models if m["fqn"][1] == "marts"]
    assert [m["name"] for m in marts if m["unique_id"] not in tested] == []


def test_offline_environment_needs_no_database_and_carries_no_password():
    env = dbt_env(load_settings({"PULSEMART_HOME": "/nonexistent"}), base={}, offline=True)
    assert env["DBT_PROFILES_DIR"] == str(DBT_PROJECT_DIR)
    assert not any("PASSWORD" in name for name in env)


def test_password_reaches_dbt_only_as_a_scrubbed_secret(monkeypatch):
    settings = load_settings(
        {"PULSEMART_DATABASE_URL": "postgresql://analyst:s3cret@db.example:6543/shop"}
    )
    env = dbt_env(settings, base={})
    assert env["DBT_ENV_SECRET_PULSEMART_PASSWORD"] == "s3cret"
    assert [name for name, value in env.items() if value == "s3cret"] == [
        "DBT_ENV_SECRET_PULSEMART_PASSWORD"
    ]
    assert (env["PULSEMART_DBT_HOST"], env["PULSEMART_DBT_PORT"], env["PULSEMART_DBT_DBNAME"]) == (
        "db.example",
        "6543",
        "shop",
    )
    assert "s3cret" not in (DBT_PROJECT_DIR / "profiles.yml").read_text()


def test_a_replay_drops_every_incremental_model_the_manifest_names(tmp_path):
    from pulsemart.datamart.project import incremental_relations

    relations = incremental_relations()
    assert ("marts", "fct_order_lines") in relations
    assert ("intermediate", "int_order_lines_netted") in relations  # not only the marts schema
    assert ("marts", "dim_product") not in relations  # a table model dbt rebuilds whole
    missing = tmp_path / "manifest.json"
    try:
        incremental_relations(missing)
    except FileNotFoundError as exc:
        assert "pulsemart datamart parse" in str(exc)
    else:
        raise AssertionError("a missing manifest must be refused, not read as no models")
