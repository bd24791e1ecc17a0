"""The ML platform's pure helpers: reports and model cards, drift profiles and the drift
decision, ranking for serving, holdout measures. No database, no MLflow store."""

import json
import math
import subprocess

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ml.interactions import from_frame
from ml.split import time_split
from orchestration.defs.ml.reports import gate_summary, git_commit, metrics_markdown, model_card
from pulsemart.cli.main import cli
from pulsemart.ml_store.drift import DriftObservation
from pulsemart.ml_store.evaluation import popularity_metrics, recency_baseline, recommender_metrics
from pulsemart.ml_store.lifecycle import GateDecision, GateOutcome
from pulsemart.ml_store.profile import OTHER, feature_profile, psi_by_feature
from pulsemart.ml_store.records import _plain
from pulsemart.ml_store.scoring import rank_available
from sensors.drift import DriftThresholds, decide, run_request, thresholds_for

RESULTS = {
    "challenger": {"version": "3", "metrics": {"ndcg_at_10": 0.31, "coverage": float("nan")}},
    "champion": {"version": "2", "metrics": {"ndcg_at_10": 0.30, "coverage": 0.2}},
    "baseline": {"version": "popularity", "metrics": {"ndcg_at_10": 0.12, "coverage": 0.01}},
}
WINDOW = {"start": "2024-01-01", "cutoff": "2024-02-10", "end": "2024-03-01"}


def test_metrics_table_lists_roles_in_a_fixed_order_and_marks_gaps():
    table = metrics_markdown(RESULTS, ["ndcg_at_10", "coverage"]).splitlines()
    assert table[0] == "| role | version | ndcg_at_10 | coverage |"
    assert table[2] == "| challenger | 3 | 0.3100 | n/a |"
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| challenger",
        "| champion",
        "| baseline",
    ]
    assert (
        len(metrics_markdown({"baseline": RESULTS["baseline"]}, ["ndcg_at_10"]).splitlines()) == 3
    )


def test_gate_summary_and_model_card_say_what_was_decided_and_why():
    summary = gate_summary(False, "does not beat champion", "ndcg_at_10", 0.02, RESULTS)
    assert summary == {
        "passed": False,
        "reason": "does not beat champion",
        "metric": "ndcg_at_10",
        "margin": 0.02,
        "challenger_ndcg_at_10": 0.31,
        "champion_ndcg_at_10": 0.30,
        "baseline_ndcg_at_10": 0.12,
    }
    card = model_card(
        "pulsemart-recommender",
        "3",
        {"model": "item_knn"},
        WINDOW,
        RESULTS,
        "ndcg_at_10",
        ["ndcg_at_10"],
        False,
        "does not beat champion",
        "2",
    )
    assert card.startswith("### pulsemart-recommender version 3")
    assert "not promoted.** does not beat champion" in card and "Champion now: 2." in card
    assert "train 2024-01-01 .. 2024-02-10, holdout to 2024-03-01" in card
    assert '`{"model": "item_knn"}`' in card and "| champion | 2 | 0.3000 |" in card


def test_gate_outcome_counts_as_a_promotion_only_when_the_champion_changed():
    passed, failed = GateDecision(True, "ok"), GateDecision(False, "no")
    assert GateOutcome(passed, "3", "2", "3", "ndcg_at_10", 0.0).promoted
    assert not GateOutcome(failed, "3", "2", "2", "ndcg_at_10", 0.0).promoted
    assert GateOutcome(passed, "1", None, "1", "ndcg_at_10", 0.0).promoted


def test_git_commit_is_the_checked_out_hash_and_none_elsewhere(tmp_path):
    assert git_commit(tmp_path) is None
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "first"]):
        subprocess.run([*git, *args], cwd=tmp_path, check=True, capture_output=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert len(head) == 40 and git_commit(tmp_path) == head


def test_audit_details_become_plain_json():
    assert _plain({"x": float("nan"), "y": np.float64(0.5), "z": [np.int64(3)]}) == {
        "x": None,
        "y": 0.5,
        "z": [3],
    }


def interactions(categories, n=1000, seed=0, price=5.0, products=50):
    rng = np.random.default_rng(seed)
    product = rng.integers(0, products, n)
    return pd.DataFrame(
        {
            "product_id": [f"P{p:03d}" for p in product],
            "category": [categories[p % len(categories)] for p in product],
            "event_type": rng.choice(["view", "cart", "purchase"], n, p=[0.8, 0.15, 0.05]),
            "unit_price": rng.lognormal(np.log(price), 0.3, n),
            "quantity": rng.integers(1, 4, n).astype(float),
            "order_id": [f"O{i // 2}" for i in range(n)],
        }
    )


def test_profile_keeps_top_products_by_name_caps_its_sample_and_drops_gaps():
    frame = interactions(["a", "b"], n=3000)
    frame.loc[:9, "unit_price"] = np.nan
    profile = feature_profile(frame, sample=1000)
    assert profile["rows"] == 3000 and len(profile["top_products"]) == 20
    assert {len(v) for k, v in profile["features"].items() if k != "basket_units"} == {1000}
    assert set(profile["features"]["product"]) <= set(profile["top_products"]) | {OTHER}
    assert all(math.isfinite(v) for v in profile["features"]["unit_price"])
    json.dumps(profile)  # it goes to a jsonb column as it is
    current = feature_profile(interactions(["a"], n=10), top_products=["P001"])
    assert set(current["features"]["product"]) <= {"P001", OTHER}


def test_psi_by_feature_is_quiet_for_the_same_world_and_loud_for_a_shifted_one():
    reference = feature_profile(interactions(["a", "b", "c", "d"], seed=1))
    same = feature_profile(interactions(["a", "b", "c", "d"], seed=2), reference["top_products"])
    shifted = feature_profile(
        interactions(["a"], seed=3, price=12.0, products=5), reference["top_products"]
    )
    quiet, loud = psi_by_feature(reference, same), psi_by_feature(reference, shifted)
    assert max(quiet.values()) < 0.1
    assert loud["category"] > 0.25 and loud["unit_price"] > 0.25 and loud["product"] > 0.25
    assert math.isnan(psi_by_feature(reference, {"features": {}})["category"])


def observation(**changes):
    base = {
        "model_name": "pulsemart-recommender",
        "version": "4",
        "since": "2024-02-10",
        "rows": 900,
        "newest": "2024-03-01T10:00:00+00:00",
        "psi": {"category": 0.02, "unit_price": 0.4, "basket_units": 0.9},
        "counts": {"category": 900, "unit_price": 900, "basket_units": 40},
        "hit_rate": 0.020,
        "expected_hit_rate": 0.025,
        "buyers": 30,
    }
    return DriftObservation(**{**base, **changes})


def test_drift_retrains_on_a_judged_psi_above_the_threshold_only():
    decision = decide(observation(), DriftThresholds())
    assert decision.retrain and decision.reasons == ("PSI unit_price 0.400 > 0.25",)
    assert "basket_units 0.900 (not judged: 40 values)" in decision.summary
    assert "unit_price 0.400 (major)" in decision.summary
    quiet = decide(
        observation(psi={"category": 0.1, "unit_price": float("nan")}), DriftThresholds()
    )
    assert not quiet.retrain and quiet.reasons == ()
    assert not decide(observation(), DriftThresholds(psi=0.5)).retrain
    assert not decide(observation(counts={"unit_price": 499}), DriftThresholds()).retrain


def test_drift_retrains_when_customers_stop_buying_what_they_are_shown():
    calm = {"psi": {"category": 0.01}}
    low = decide(observation(**calm, hit_rate=0.01), DriftThresholds())
    assert low.retrain and low.reasons[0].startswith("hit rate 0.0100 < 0.5 x holdout precision")
    assert not decide(observation(**calm, hit_rate=0.01, buyers=5), DriftThresholds()).retrain
    assert not decide(observation(**calm, hit_rate=None), DriftThresholds()).retrain
    assert not decide(
        observation(**calm, hit_rate=0.01, expected_hit_rate=None), DriftThresholds()
    ).retrain


def test_drift_run_request_names_the_version_and_says_why():
    decision = decide(observation(), DriftThresholds())
    request = run_request(observation(), decision, "ml_train")
    assert request.job_name == "ml_train"
    assert request.run_key == "ml_drift:pulsemart-recommender:4:2024-03-01"
    assert request.tags["pulsemart/drift_reasons"] == "PSI unit_price 0.400 > 0.25"
    assert json.loads(request.tags["pulsemart/drift_psi"])["unit_price"] == 0.4


def test_psi_threshold_comes_from_the_settings():
    from pulsemart.config import SettingsError, load_settings

    assert thresholds_for(load_settings({})) == DriftThresholds()
    assert thresholds_for(load_settings({"PULSEMART_DRIFT_PSI_THRESHOLD": "0.1"})).psi == 0.1
    for bad in ("high", "0", "-1"):
        with pytest.raises(SettingsError, match="PULSEMART_DRIFT_PSI_THRESHOLD"):
            load_settings({"PULSEMART_DRIFT_PSI_THRESHOLD": bad})


def test_rank_available_skips_unavailable_products_and_re_ranks():
    recs = pd.DataFrame(
        {
            "customer_id": ["a"] * 4 + ["b"] * 4,
            "product_id": ["p1", "p2", "p3", "p4"] * 2,
            "rank": [1, 2, 3, 4] * 2,
            "score": [0.9, 0.8, 0.7, 0.6] * 2,
        }
    )
    ranked = rank_available(recs, {"p2"}, k=2)
    assert ranked[["customer_id", "product_id", "rank"]].values.tolist() == [
        ["a", "p1", 1],
        ["a", "p3", 2],
        ["b", "p1", 1],
        ["b", "p3", 2],
    ]


def split_of_repeat_buyers():
    """Each customer buys the same two products before and after the cutoff."""
    rows = [(f"c{c}", f"p{(c + j) % 10}", day) for c in range(20) for j in (0, 1) for day in (1, 9)]
    frame = from_frame(
        pd.DataFrame(
            {
                "customer_id": [r[0] for r in rows],
                "product_id": [r[1] for r in rows],
                "event_time": [
                    pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=r[2]) for r in rows
                ],
                "event_type": "purchase",
                "order_id": [f"{r[0]}-{r[2]}" for r in rows],
            }
        )
    )
    return time_split(frame, 0.5)


def test_holdout_measures_an_oracle_perfectly_and_popularity_worse():
    split = split_of_repeat_buyers()
    truth = split.test

    def oracle(customers, k):
        mine = truth[truth["customer_id"].isin(customers)].drop_duplicates(
            ["customer_id", "product_id"]
        )
        return mine.assign(rank=mine.groupby("customer_id").cumcount() + 1, score=1.0)

    assert recommender_metrics(oracle, split)["ndcg_at_10"] == pytest.approx(1.0)
    assert popularity_metrics(split)["ndcg_at_10"] < 0.7


def test_recency_baseline_ranks_recent_buyers_higher():
    from ml.propensity import FEATURES, PropensityDataset

    recency = np.arange(1, 41, dtype=float)
    features = pd.DataFrame(0.0, index=[f"c{i}" for i in range(40)], columns=list(FEATURES))
    features["recency_days"] = recency
    label = pd.Series((recency < 20).astype(int), index=features.index)
    dataset = PropensityDataset(
        features, label, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")
    )
    scores = recency_baseline(dataset).predict_proba(features)[:, 1]
    assert scores[0] > 0.5 > scores[-1] and np.all(np.diff(scores) < 0)


def test_model_commands_are_listed():
    result = CliRunner().invoke(cli, ["model", "--help"])
    assert result.exit_code == 0
    for command in ("status", "promote", "rollback", "evaluate"):
        assert command in result.output


def test_ml_train_covers_the_layer_and_runs_weekly_and_on_drift():
    import dagster as dg

    from orchestration.definitions import defs

    ml_keys = {spec.key for spec in defs.resolve_all_asset_specs() if spec.group_name == "ml"}
    assert all(
        defs.resolve_assets_def(key).get_asset_spec(key).tags["lane"] == "batch" for key in ml_keys
    )
    job = defs.resolve_job_def("ml_train")
    # The experiment readout has its own job and schedule: it reads experiments, trains nothing.
    readout = dg.AssetKey(["ml", "experiment_readout"])
    assert readout in ml_keys and len(ml_keys) == 10
    assert set(job.asset_layer.executable_asset_keys) == ml_keys - {readout}
    assert defs.resolve_job_def("ml_experiment_readout").asset_layer.executable_asset_keys == {
        readout
    }
    schedule = defs.resolve_schedule_def("ml_weekly_retrain")
    assert (
        schedule.job_name == "ml_train"
        and schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    )
    sensor = next(s for s in defs.sensors if s.name == "ml_drift_sensor")
    assert sensor.job_name == "ml_train" and sensor.minimum_interval_seconds == 600
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
