"""The ML platform end to end: simulated stream → datamart → ml_train through Dagster → gate →
batch scores served by the API → manual promotion and rollback → drift sensor."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ml import registry
from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from orchestration.resources import build_resources
from pulsemart.cli.main import cli
from pulsemart.serving.api import create_app
from pulsemart.serving.cache import ResponseCache
from pulsemart.stream.simulator import generate
from tests.integration.datamart_support import build_datamart
from tests.integration.helpers import produce_simulated
from tests.mlflow_state import mlflow_state_restored

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # Raised inside MLflow itself (SQLAlchemy loader options, a pandas 3 deprecation).
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore:.*noload.*"),
    pytest.mark.filterwarnings("ignore:Operation with range is deprecated"),
]
TOPICS = ["shop.catalog", "shop.events"]
KEY = "test-key-ml"
# 200 customers rather than the simulator's 2,000: in 5,000 events most customers then come
# back after the training cutoff, so the holdout has buyers to measure on.
CUSTOMERS = 200
ML_TABLES = (
    "serving.recommendations, serving.item_neighbours, serving.propensity_scores, "
    "serving.model_deployments, governance.training_profiles"
)
# The neighbours the API reads: the deployed recommender version's.
SERVED_NEIGHBOURS = """
select n.model_version, n.product_id, n.rank, n.neighbour_id, n.score
from serving.model_deployments d
join serving.item_neighbours n on n.model_name = d.model_name and n.model_version = d.model_version
where d.model_name = 'pulsemart-recommender'
order by n.product_id, n.rank
"""


@pytest.fixture
def ml_store(fresh_stream, db, tmp_path, monkeypatch):
    """Empty ML tables and an MLflow registry of this test's own; both put back afterwards."""

    def empty():
        db.rollback()
        db.execute(f"truncate {ML_TABLES}")
        db.execute("delete from governance.model_evaluations where model_name like 'pulsemart-%'")
        db.commit()

    with mlflow_state_restored():
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
        empty()
        yield fresh_stream
        empty()  # test_serving expects the trending sources: no model may stay deployed


def train(db, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    db.rollback()
    result = defs.resolve_job_def("ml_train").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config=run_config or {}
    )
    assert result.success
    return result


def metadata(result, name: str) -> dict:
    [materialization] = [m for m in result.asset_materializations_for_node(f"ml__{name}")]
    return {key: value.value for key, value in materialization.metadata.items()}


def audits(db, action: str) -> list[tuple]:
    return db.execute(
        "select actor, subject, details from governance.audit_log where action = %s "
        "order by audit_id",
        (action,),
    ).fetchall()


def drift_sensor_says(db):
    db.rollback()
    sensor = next(s for s in defs.sensors if s.name == "ml_drift_sensor")
    with dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(), resources=build_resources()
    ) as ctx:
        return sensor(ctx)


def sales_file(db, path):
    """The stream's purchases as an Online Retail file (raw customer ids, as a shop exports)."""
    rows = db.execute(
        "select o.order_id, o.product_id, o.quantity, "
        "to_char(e.event_time at time zone 'UTC', 'MM/DD/YYYY HH24:MI'), o.unit_price, e.customer_id "
        "from quality.order_lines_clean o join quality.events_clean e using (event_id) "
        "where not o.is_cancellation and e.customer_id is not null"
    ).fetchall()
    db.rollback()
    pd.DataFrame(
        rows,
        columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"],
    ).assign(Description="item", Country="United Kingdom").to_csv(path, index=False)
    return path


def served_neighbours(db) -> list[tuple]:
    rows = db.execute(SERVED_NEIGHBOURS).fetchall()
    db.rollback()
    return rows


def test_train_gate_serve_roll_back_and_drift(ml_store, db, tmp_path):
    settings = ml_store
    produce_simulated(settings, list(generate(5000, seed=7, n_customers=CUSTOMERS)))
    catch_up(settings, defs, TOPICS, serve=True)
    build_datamart(db)

    # First run: no champion yet, so the challenger only has to beat popularity.
    first = train(db)
    dataset = metadata(first, "training_dataset")
    assert dataset["holdout_customers"] > 0 and dataset["rows"] > 3000
    gate = metadata(first, "recommender_champion")
    assert gate["passed"] and gate["champion"] == "1" and "no champion yet" in gate["reason"]
    assert "### pulsemart-recommender version 1" in gate["model_card"]
    # The session replay's figures are recorded beside the gate's metric and shown on the card.
    assert "session_hr_at_10" in gate["model_card"] and "**Session replay**" in gate["model_card"]
    assert 0 <= gate["challenger_session_hr_at_10"] <= 1
    recorded = dict(
        db.execute(
            "select role, value from governance.model_evaluations where dagster_run_id = %s "
            "and metric = 'session_hr_at_10'",
            (first.run_id,),
        ).fetchall()
    )
    db.rollback()
    assert set(recorded) == {"challenger", "baseline"}
    scored = metadata(first, "recommendations")
    assert scored["model_version"] == "1" and scored["rows"] >= 10 * scored["customers"] > 0
    assert scored["neighbour_rows"] > 0
    checks = {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in first.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks == {
        "holdout_not_empty": True,
        "recommendations_exclude_unavailable": True,
        "item_neighbours_cover_catalog": True,
        "item_neighbours_know_their_products": True,
    }
    assert registry.status(registry.RECOMMENDER)["champion"] == "1"
    neighbours_v1 = served_neighbours(db)
    assert len(neighbours_v1) == scored["neighbour_rows"]
    assert {row[0] for row in neighbours_v1} == {"1"}
    assert all(row[1] != row[3] and row[4] > 0 for row in neighbours_v1)

    customer = db.execute(
        "select customer_id from quality.events_clean where customer_id is not null and "
        "governance.keyed_hash(customer_id) in (select customer_key from serving.recommendations) "
        "order by customer_id limit 1"
    ).fetchone()[0]
    db.rollback()
    # Without the response cache: each switch below is read at once, and the cache may answer
    # up to its staleness bound (0.25 s) late by design (test_cache_staleness.py).
    app = create_app(
        settings.model_copy(update={"api_key": SecretStr(KEY)}),
        cache=ResponseCache(max_staleness_s=0),
    )
    with TestClient(app, headers={"X-API-Key": KEY}) as api:

        def served(who: str = customer) -> dict:
            return api.get(f"/customers/{who}/recommendations", params={"k": 10}).json()

        v1 = served()
        assert v1["source"] == "model" and v1["model_version"] == "1" and len(v1["items"]) == 10
        assert all(item["available"] is not False for item in v1["items"])
        assert served("nobody-knows-me")["source"] == "trending"

        # Second run: a popularity "challenger" cannot beat the popularity baseline.
        second = train(
            db,
            {
                "ops": {
                    "ml__recommender_challenger": {
                        "config": {"params_json": json.dumps({"model": "popularity"})}
                    }
                }
            },
        )
        rejected = metadata(second, "recommender_champion")
        assert not rejected["passed"] and "does not beat baseline" in rejected["reason"]
        assert (
            rejected["champion"] == "1"
            and metadata(second, "recommendations")["model_version"] == "1"
        )
        [(actor, _, details)] = [
            a for a in audits(db, "ml.gate") if a[1] == "pulsemart-recommender/2"
        ]
        assert actor.startswith("dagster:") and not details["passed"]
        assert "does not beat baseline" in details["reason"]
        roles = dict(
            db.execute(
                "select role, model_version from governance.model_evaluations where "
                "model_name = 'pulsemart-recommender' and dagster_run_id = %s "
                "group by 1, 2",
                (second.run_id,),
            ).fetchall()
        )
        assert roles == {"challenger": "2", "champion": "1", "baseline": "popularity"}
        assert served()["model_version"] == "1"

        # By hand: promote the rejected version (scored on the way), then roll back.
        runner = CliRunner()
        promoted = runner.invoke(cli, ["model", "promote", "2", "--reason", "test override"])
        assert promoted.exit_code == 0, promoted.output
        v2 = served()
        assert v2["model_version"] == "2" and v2["items"] != v1["items"]
        # v2's own rows serve now. Both versions learned their sequential rules (ml.sequences)
        # from the same interactions, so where a product has rules the two lists agree.
        neighbours_v2 = served_neighbours(db)
        assert neighbours_v2 and {row[0] for row in neighbours_v2} == {"2"}
        assert {r[1:] for r in neighbours_v2} & {r[1:] for r in neighbours_v1}
        rolled = runner.invoke(cli, ["model", "rollback"])
        assert rolled.exit_code == 0, rolled.output
        back = served()  # v1's rows were kept: served again at once, without scoring
        assert back["model_version"] == "1" and back["items"] == v1["items"]
        assert served_neighbours(db) == neighbours_v1  # and v1's neighbours with them

        # Propensity on /customers/{id}: the deployed version's batch score, following a
        # promotion and a rollback without a restart; null for a customer it did not score.
        def propensity(who: str) -> dict | None:
            return api.get(f"/customers/{who}").json()["propensity"]

        def stored(who: str, version: str) -> float:
            return db.execute(
                "select score from serving.propensity_scores where model_version = %s "
                "and customer_key = governance.keyed_hash(%s)",
                (version, who),
            ).fetchone()[0]

        name = ["--name", registry.PROPENSITY]
        assert runner.invoke(cli, ["model", "promote", "1", *name]).exit_code == 0
        scored = db.execute(
            "select customer_id from quality.events_clean where governance.keyed_hash("
            "customer_id) in (select customer_key from serving.propensity_scores) "
            "order by customer_id limit 1"
        ).fetchone()[0]
        db.rollback()
        p1 = propensity(scored)
        assert p1["model_name"] == registry.PROPENSITY and p1["model_version"] == "1"
        assert 0 <= p1["score"] <= 1 and p1["score"] == stored(scored, "1")
        assert (
            runner.invoke(cli, ["model", "promote", "2", *name]).exit_code == 0
        )  # scored on the way
        p2 = propensity(scored)
        assert p2["model_version"] == "2" and p2["score"] == stored(scored, "2")
        assert runner.invoke(cli, ["model", "rollback", *name]).exit_code == 0
        assert propensity(scored) == p1
        assert api.get("/customers/nobody-knows-me").json() == {
            "customer_id": "nobody-knows-me",
            "known": False,
            "propensity": None,
        }
        db.rollback()

    def recommender_audits(action: str) -> list[tuple]:
        return [a for a in audits(db, action) if a[1].startswith(registry.RECOMMENDER)]

    assert [(a, s, d["from"], d["to"]) for a, s, d in recommender_audits("ml.rollback")] == [
        ("pulsemart model rollback", "pulsemart-recommender/1", "2", "1")
    ]
    assert recommender_audits("ml.promote")[-1][2]["reason"] == "test override"
    status = runner.invoke(cli, ["model", "status"])
    assert "champion 1, challenger none, deployed 1" in status.output
    # The history is the audit log; the gate's verdict is a tag on the version.
    assert "ml.rollback  pulsemart-recommender/1 2 -> 1" in status.output
    assert "rejected: " in status.output and "a rollback restores: nothing" in status.output
    again = runner.invoke(cli, ["model", "rollback"])
    assert again.exit_code == 1 and "no previous champion" in again.output
    unknown = runner.invoke(cli, ["model", "promote", "99"])
    assert unknown.exit_code == 1 and "has no version '99'" in unknown.output
    offline = runner.invoke(
        cli, ["model", "evaluate", "--data", str(sales_file(db, tmp_path / "sales.csv"))]
    )
    assert offline.exit_code == 0, offline.output
    assert "NDCG@10 ratio default / popularity" in offline.output
    assert "champion pulsemart-recommender v1 on the same split" in offline.output

    # Drift: nothing new since training → skip; then customers turn to a few products → retrain.
    quiet = drift_sensor_says(db)
    assert isinstance(quiet, dg.SkipReason) and "no drift" in quiet.skip_message
    last = db.execute("select max(event_time) from marts.fct_product_interactions").fetchone()[0]
    db.rollback()
    produce_simulated(
        settings,
        list(
            generate(
                2500,
                seed=99,
                n_customers=CUSTOMERS,
                n_products=4,
                start_time=last + timedelta(hours=1),
            )
        ),
    )
    catch_up(settings, defs, TOPICS, serve=True)
    build_datamart(db)
    request = drift_sensor_says(db)
    assert isinstance(request, dg.RunRequest), request
    assert request.job_name == "ml_train" and request.run_key.startswith(
        "ml_drift:pulsemart-recommender:1:"
    )
    assert "PSI category" in request.tags["pulsemart/drift_reasons"]
    assert json.loads(request.tags["pulsemart/drift_psi"])["category"] > 0.25
