"""The MLflow round trip on a throw-away SQLite store: log, register, gate, promote, roll back."""

from pathlib import Path

import pandas as pd
import pytest
from ml_builders import loyal_and_occasional, taste_groups

from ml import registry
from ml.propensity import build_propensity_dataset, train_propensity
from ml.recommenders import make_recommender
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
        recommender, {"ndcg_at_10": ndcg, "precision_at_10": ndcg / 2}, recommender.to_params(),
        {"start": "2024-01-01", "cutoff": "2024-02-10", "end": "2024-03-01"},
        dagster_run_id="dagster-run-1", git_commit="abc1234")
    return logged, registry.register(logged.run_id, registry.RECOMMENDER)


def test_tracking_uri_defaults_to_sqlite_under_home(tmp_path):
    assert registry.tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow/mlflow.db"
    assert registry.tracking_uri(tmp_path, "http://mlflow:5000") == "http://mlflow:5000"
    assert registry.artifact_root(tmp_path) == tmp_path.resolve() / "mlflow" / "artifacts"


def test_gate():
    baseline = {"ndcg_at_10": 0.10}
    assert registry.gate({"ndcg_at_10": 0.3}, None, baseline).passed
    assert not registry.gate({"ndcg_at_10": 0.08}, None, baseline).passed
    assert not registry.gate({"ndcg_at_10": 0.3}, {"ndcg_at_10": 0.3}, baseline).passed  # a tie
    assert registry.gate({"ndcg_at_10": 0.31}, {"ndcg_at_10": 0.3}, baseline).passed
    decision = registry.gate({"ndcg_at_10": 0.31}, {"ndcg_at_10": 0.3}, baseline, margin=0.02)
    assert not decision.passed and "champion" in decision.reason
    assert not registry.gate({"roc_auc": 0.7}, None, baseline).passed  # metric missing
    assert registry.gate({"roc_auc": 0.7}, None, {"roc_auc": 0.5}, metric="roc_auc").passed


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
        Path(home, "mlflow", "artifacts").rglob("MLmodel"))

    assert registry.challenge(registry.RECOMMENDER, v1, baseline).passed
    _, v2 = _log(recommender, 0.35)
    assert registry.challenge(registry.RECOMMENDER, v2, baseline).passed
    _, v3 = _log(recommender, 0.20)  # worse than the champion: stays challenger
    decision = registry.challenge(registry.RECOMMENDER, v3, baseline)
    assert not decision.passed and "champion" in decision.reason
    state = registry.status(registry.RECOMMENDER)
    assert (state["champion"], state["challenger"]) == (v2, v3)
    _, v4 = _log(recommender, 0.40)
    assert registry.challenge(registry.RECOMMENDER, v4, baseline).passed
    assert registry.status(registry.RECOMMENDER)["previous_champions"] == [v1, v2]

    assert registry.rollback(registry.RECOMMENDER)["champion"] == v2
    assert registry.rollback(registry.RECOMMENDER)["champion"] == v1
    with pytest.raises(ValueError, match="no previous champion"):
        registry.rollback(registry.RECOMMENDER)

    state = registry.status(registry.RECOMMENDER)
    assert [v["version"] for v in state["versions"]] == [v1, v2, v3, v4]
    assert state["versions"][3]["metrics"]["ndcg_at_10"] == pytest.approx(0.40)
    assert [(h["action"], h["version"]) for h in state["history"]] == [
        ("promoted", v1), ("promoted", v2), ("rejected", v3), ("promoted", v4),
        ("rolled_back", v2), ("rolled_back", v1)]

    # Serving loads whatever is champion and gets k rows per customer.
    model = mlflow.pyfunc.load_model(f"models:/{registry.RECOMMENDER}@champion")
    out = model.predict(pd.DataFrame({"customer_id": ["g0c0", "stranger"]}), params={"k": 3})
    assert out.groupby("customer_id")["rank"].apply(list).to_dict() == {
        "g0c0": [1, 2, 3], "stranger": [1, 2, 3]}


def test_manual_promote_and_propensity_model(store):
    import mlflow.pyfunc

    interactions = loyal_and_occasional(customers=60)
    data = build_propensity_dataset(interactions, interactions["event_time"].min()
                                    + pd.Timedelta(days=150))
    model = train_propensity(data, "logistic")
    logged = registry.log_propensity(model, {"roc_auc": 0.7}, {"model": "logistic"},
                                     {"cutoff": "2024-02-10"},
                                     input_example=data.features.head(3))
    version = registry.register(logged.run_id, registry.PROPENSITY)
    state = registry.promote(registry.PROPENSITY, version, reason="first model")
    assert state["champion"] == version and state["history"][-1]["reason"] == "first model"
    loaded = mlflow.pyfunc.load_model(f"models:/{registry.PROPENSITY}@champion")
    assert len(loaded.predict(data.features.head(5))) == 5
