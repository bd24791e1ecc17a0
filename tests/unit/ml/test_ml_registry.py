"""The MLflow round trip on a throw-away SQLite store: log, register, gate, promote, roll back.

The gate is the lifecycle's (pulsemart.ml_store.lifecycle); the registry keeps the champion
alias and the version tags a rollback is derived from."""

from pathlib import Path

import pandas as pd
import pytest
from ml_builders import loyal_and_occasional, taste_groups

from ml import registry
from ml.propensity import build_propensity_dataset, train_propensity
from ml.recommenders import make_recommender
from pulsemart.ml_store.lifecycle import gate
from tests.mlflow_state import mlflow_state_restored

# Raised inside MLflow itself (SQLAlchemy loader options, a pandas 3 deprecation), not by ml.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*"),
    pytest.mark.filterwarnings("ignore:.*noload.*"),
    pytest.mark.filterwarnings("ignore:Operation with range is deprecated"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """MLflow pointed at a temporary home; its process-wide state is put back afterwards."""
    with mlflow_state_restored():
        home = tmp_path_factory.mktemp("pulsemart-home")
        experiment_id = registry.configure(home)
        yield home, experiment_id


@pytest.fixture(scope="module")
def recommender():
    return make_recommender().fit(taste_groups())


def _log(recommender, ndcg):
    logged = registry.log_recommender(
        recommender,
        {"ndcg_at_10": ndcg, "precision_at_10": ndcg / 2},
        recommender.to_params(),
        {"start": "2024-01-01", "cutoff": "2024-02-10", "end": "2024-03-01"},
        dagster_run_id="dagster-run-1",
        git_commit="abc1234",
    )
    return logged, registry.register(logged.run_id, registry.RECOMMENDER)


def test_tracking_uri_defaults_to_sqlite_under_home(tmp_path):
    assert registry.tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db"
    assert registry.tracking_uri(tmp_path, "http://mlflow:5000") == "http://mlflow:5000"
    assert registry.artifact_root(tmp_path) == tmp_path.resolve() / "mlflow" / "artifacts"


def test_gate():
    baseline = {"ndcg_at_10": 0.10}
    ndcg = "ndcg_at_10"
    assert gate({"ndcg_at_10": 0.3}, None, baseline, ndcg).passed
    assert not gate({"ndcg_at_10": 0.08}, None, baseline, ndcg).passed
    assert not gate({"ndcg_at_10": 0.3}, {"ndcg_at_10": 0.3}, baseline, ndcg).passed  # a tie
    assert gate({"ndcg_at_10": 0.31}, {"ndcg_at_10": 0.3}, baseline, ndcg).passed
    decision = gate({"ndcg_at_10": 0.31}, {"ndcg_at_10": 0.3}, baseline, ndcg, margin=0.02)
    assert not decision.passed and "champion" in decision.reason
    assert not gate({"roc_auc": 0.7}, None, baseline, ndcg).passed  # metric missing
    assert gate({"roc_auc": 0.7}, None, {"roc_auc": 0.5}, metric="roc_auc").passed


def _version(number: str, promoted: str | None = None, rolled_back: str | None = None) -> dict:
    tags = {}
    if promoted:
        tags[registry.PROMOTED_AT] = promoted
    if rolled_back:
        tags[registry.ROLLED_BACK_AT] = rolled_back
    return {"version": number, "tags": tags}


def test_the_previous_champion_is_derived_from_version_tags():
    t = [f"2026-01-01T00:00:0{i}.000000+00:00" for i in range(8)]
    # 1, 2, 3 promoted in turn; 4 never was (a rejected challenger).
    history = [_version("1", t[1]), _version("2", t[2]), _version("3", t[3]), _version("4")]
    assert registry.previous_champion(history, "3") == "2"
    # 3 rolled back to 2: the next rollback goes to 1, never forward to 3.
    history[2] = _version("3", t[3], rolled_back=t[4])
    assert registry.previous_champion(history, "2") == "1"
    history[1] = _version("2", t[2], rolled_back=t[5])
    assert registry.previous_champion(history, "1") is None
    # Promoted again after its rollback, 3 is a champion a later rollback may restore.
    history[2] = _version("3", t[6], rolled_back=t[4])
    assert registry.previous_champion(history, "1") == "3"
    assert registry.previous_champion([_version("1")], None) is None


def test_round_trip_promote_gate_and_rollback(store, recommender):
    import mlflow
    import mlflow.pyfunc

    home, experiment_id = store
    baseline = {"ndcg_at_10": 0.10}
    logged, v1 = _log(recommender, 0.30)
    run = mlflow.get_run(logged.run_id)
    assert run.info.experiment_id == experiment_id
    assert run.data.tags["dagster_run_id"] == "dagster-run-1"
    assert run.data.tags["mlflow.source.git.commit"] == "abc1234"
    assert run.data.tags["data_window.cutoff"] == "2024-02-10"
    assert run.data.params["model"] == "item_knn"
    assert Path(home, "mlflow", "artifacts").is_dir() and any(
        Path(home, "mlflow", "artifacts").rglob("MLmodel")
    )

    def challenge(version):  # what lifecycle.gate_and_promote does, without the audit rows
        registry.set_challenger(registry.RECOMMENDER, version)
        champion = registry.alias_version(registry.RECOMMENDER, registry.CHAMPION)
        decision = gate(
            registry.run_metrics(registry.RECOMMENDER, version),
            registry.run_metrics(registry.RECOMMENDER, champion) if champion else None,
            baseline,
            "ndcg_at_10",
        )
        registry.record_gate(registry.RECOMMENDER, version, decision.passed, decision.reason)
        if decision.passed:
            registry.set_champion(registry.RECOMMENDER, version, decision.reason)
        return decision

    assert challenge(v1).passed
    _, v2 = _log(recommender, 0.35)
    assert challenge(v2).passed
    _, v3 = _log(recommender, 0.20)  # worse than the champion: stays challenger
    decision = challenge(v3)
    assert not decision.passed and "champion" in decision.reason
    state = registry.status(registry.RECOMMENDER)
    assert (state["champion"], state["challenger"], state["previous_champion"]) == (v2, v3, v1)
    _, v4 = _log(recommender, 0.40)
    assert challenge(v4).passed
    state = registry.status(registry.RECOMMENDER)
    assert (state["champion"], state["challenger"], state["previous_champion"]) == (v4, None, v2)

    assert registry.roll_back(registry.RECOMMENDER) == (v4, v2)
    assert registry.roll_back(registry.RECOMMENDER) == (v2, v1)
    with pytest.raises(ValueError, match="no previous champion"):
        registry.roll_back(registry.RECOMMENDER)

    state = registry.status(registry.RECOMMENDER)
    assert state["champion"] == v1 and state["previous_champion"] is None
    assert [v["version"] for v in state["versions"]] == [v1, v2, v3, v4]
    assert state["versions"][3]["metrics"]["ndcg_at_10"] == pytest.approx(0.40)
    tags = {v["version"]: v["tags"] for v in state["versions"]}
    assert tags[v3][registry.GATE].startswith("rejected: ") and registry.PROMOTED_AT not in tags[v3]
    assert tags[v4][registry.GATE].startswith("passed: ") and registry.ROLLED_BACK_AT in tags[v4]
    # No list of champions kept beside the alias: the registered model has no tags of ours.
    import mlflow

    assert not mlflow.MlflowClient().get_registered_model(registry.RECOMMENDER).tags

    # Serving loads whatever is champion and gets k rows per customer.
    model = mlflow.pyfunc.load_model(f"models:/{registry.RECOMMENDER}@champion")
    out = model.predict(pd.DataFrame({"customer_id": ["g0c0", "stranger"]}), params={"k": 3})
    assert out.groupby("customer_id")["rank"].apply(list).to_dict() == {
        "g0c0": [1, 2, 3],
        "stranger": [1, 2, 3],
    }


def test_manual_promote_and_propensity_model(store):
    import mlflow.pyfunc

    interactions = loyal_and_occasional(customers=60)
    data = build_propensity_dataset(
        interactions, interactions["event_time"].min() + pd.Timedelta(days=150)
    )
    model = train_propensity(data, "logistic")
    logged = registry.log_propensity(
        model,
        {"roc_auc": 0.7},
        {"model": "logistic"},
        {"cutoff": "2024-02-10"},
        input_example=data.features.head(3),
    )
    version = registry.register(logged.run_id, registry.PROPENSITY)
    assert registry.set_champion(registry.PROPENSITY, version, reason="first model") is None
    state = registry.status(registry.PROPENSITY)
    assert state["champion"] == version
    assert state["versions"][-1]["tags"][registry.PROMOTION_REASON] == "first model"
    loaded = mlflow.pyfunc.load_model(f"models:/{registry.PROPENSITY}@champion")
    assert len(loaded.predict(data.features.head(5))) == 5
