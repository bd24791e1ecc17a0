"""The online experiment's readout: figures worked out by hand, the online gate, the guardrail,
the sample-ratio and exposure checks, the model card's online evidence, and the evidence
written onto an MLflow model version."""

import json
from datetime import UTC, datetime
from typing import get_args

import pytest

from orchestration.defs.ml.experiments import (
    guardrail_result,
    min_exposures_result,
    sample_ratio_result,
)
from orchestration.defs.ml.reports import model_card, readout_markdown
from pulsemart.config import Environment
from pulsemart.ml_store.experiment_readout import METRICS, ArmTotals, summarize
from pulsemart.ml_store.experiments import Experiment, Variant
from pulsemart.ml_store.lifecycle import GateDecision
from pulsemart.ml_store.online_gate import (
    guardrail,
    online_evidence,
    online_gate,
    record_online_evidence,
)
from tests.mlflow_state import mlflow_state_restored

MODEL = "pulsemart-recommender"
HALF = (Variant("challenger", "4", 0.5, 0.0, 0.5),)


def experiment(variants=HALF, shadow=False, status="running") -> Experiment:
    started = datetime(2024, 5, 1, 12, tzinfo=UTC)
    return Experiment(7, MODEL, "3", shadow, status, started, "test", None, None, None, variants)


def totals(variant, exposures, clicks, purchases, revenue=0.0, revenue_sq=0.0, version=None):
    return ArmTotals(variant, version, exposures, clicks, purchases, revenue, revenue_sq)


# Champion: CTR 0.10, conversion 0.05, revenue 2.00 per exposure. Challenger: CTR 0.15 (a
# clear gain), conversion 0.03 (a significant loss), revenue 2.50 (within the noise).
CHAMPION = totals("champion", 1000, 100, 50, 2000.0, 100_000.0)
CHALLENGER = totals("challenger", 1000, 150, 30, 2500.0, 120_000.0)


def test_each_arm_gets_its_rates_with_wilson_intervals_and_the_mean_with_its_interval():
    readout = summarize(experiment(), [CHAMPION, CHALLENGER])
    champion = readout.arm("champion")
    assert [a.variant for a in readout.arms] == ["champion", "challenger"]
    assert champion.totals.model_version == "3" and readout.arm("challenger").share == 0.5
    # Wilson, 100 of 1000 at 95%: centre (0.1 + z²/2n) / (1 + z²/n), half-width
    # z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n), z = 1.959964.
    assert champion.ctr.estimate == 0.1
    assert champion.ctr.low == pytest.approx(0.08291, abs=1e-5)
    assert champion.ctr.high == pytest.approx(0.12015, abs=1e-5)
    # Revenue: variance (100000 - 2000²/1000) / 999 = 96.096; 2 ± 1.96·sqrt(96.096/1000).
    assert champion.revenue_per_exposure.estimate == 2.0
    assert champion.revenue_per_exposure.low == pytest.approx(2 - 0.60757, abs=1e-4)


def test_each_challenger_is_compared_with_the_champion_on_the_three_metrics():
    comparison = summarize(experiment(), [CHAMPION, CHALLENGER]).comparisons["challenger"]
    ctr = comparison["ctr"]
    # Difference 0.05, unpooled se sqrt(0.09/1000 + 0.1275/1000) = 0.014748; pooled rate
    # 0.125, se sqrt(0.125·0.875·2/1000) = 0.014790, z = 3.3806, p = 0.000723.
    assert ctr.difference.estimate == pytest.approx(0.05)
    assert ctr.difference.low == pytest.approx(0.021095, abs=1e-5)
    assert ctr.difference.high == pytest.approx(0.078905, abs=1e-5)
    assert ctr.p_value == pytest.approx(0.000723, abs=2e-6)
    assert ctr.relative_lift == pytest.approx(0.5)
    # Conversion: -0.02, pooled 0.04, se 0.0087636, z = 2.2822, p = 0.02248.
    assert comparison["conversion"].p_value == pytest.approx(0.02248, abs=1e-4)
    # Revenue: Welch se sqrt(96.096/1000 + 113.864/1000) = 0.45821, z = 1.0912, p = 0.2752.
    assert comparison["revenue_per_exposure"].difference.estimate == pytest.approx(0.5)
    assert comparison["revenue_per_exposure"].p_value == pytest.approx(0.2752, abs=1e-3)


def test_the_online_gate_passes_a_significant_gain_and_names_the_figures():
    readout = summarize(experiment(), [CHAMPION, CHALLENGER])
    decision = online_gate(readout, "challenger", "ctr", 0.05, 200)
    assert decision.passed
    assert "ctr challenger 0.1500 vs champion 0.1000, lift +0.0500 (+50.0%)" in decision.reason
    assert "95% CI [+0.0211, +0.0789], p=0.000723" in decision.reason
    # Neither a loss nor a gain within the noise passes.
    assert not online_gate(readout, "challenger", "conversion", 0.05, 200).passed
    revenue = online_gate(readout, "challenger", "revenue_per_exposure", 0.05, 200)
    assert not revenue.passed and "not a significant gain at alpha 0.05" in revenue.reason
    # A stricter alpha than the p turns the gain down.
    assert not online_gate(readout, "challenger", "ctr", 0.0005, 200).passed
    with pytest.raises(ValueError, match="unknown online metric"):
        online_gate(readout, "challenger", "ndcg_at_10", 0.05, 200)


def test_the_online_gate_needs_every_arm_to_have_its_exposures():
    few = totals("challenger", 150, 40, 3)
    decision = online_gate(summarize(experiment(), [CHAMPION, few]), "challenger", "ctr", 0.05, 200)
    assert not decision.passed
    assert decision.reason == "too few exposures (challenger 150; each arm needs 200)"
    nothing = summarize(experiment(), [])
    assert [a.totals.exposures for a in nothing.arms] == [0, 0]
    assert nothing.arm("challenger").ctr.estimate is None
    assert "champion 0, challenger 0" in online_gate(nothing, "challenger", "ctr", 0.05, 1).reason


def test_the_online_gate_refuses_a_broken_split_a_shadow_and_an_unknown_arm():
    skewed = summarize(
        experiment(), [totals("champion", 1200, 120, 60), totals("challenger", 800, 160, 40)]
    )
    decision = online_gate(skewed, "challenger", "ctr", 0.05, 200)
    assert not decision.passed and decision.reason.startswith("sample ratio mismatch")
    shadow = summarize(experiment((Variant("shadow", "4", 0.2, 0.0, 0.2),), shadow=True), [])
    assert "shadow" in online_gate(shadow, "shadow", "ctr", 0.05, 1).reason
    readout = summarize(experiment(), [CHAMPION, CHALLENGER])
    assert not online_gate(readout, "challenger_2", "ctr", 0.05, 1).passed
    assert not online_gate(readout, "champion", "ctr", 0.05, 1).passed


def test_the_guardrail_is_breached_by_significantly_worse_conversion_only():
    breached, reason = guardrail(summarize(experiment(), [CHAMPION, CHALLENGER]), 0.05)
    assert breached
    assert "conversion challenger 0.0300 vs champion 0.0500, lift -0.0200 (-40.0%)" in reason
    # -0.005 (45 purchases against 50): pooled se 0.0095125, z = 0.526, p = 0.599.
    close = totals("challenger", 1000, 150, 45)
    breached, reason = guardrail(summarize(experiment(), [CHAMPION, close]), 0.05)
    assert not breached and "p=0.599" in reason
    # At alpha 0.01 the loss above (p = 0.022) is not significant.
    assert not guardrail(summarize(experiment(), [CHAMPION, CHALLENGER]), 0.01)[0]


def test_a_shadow_experiment_shows_its_champion_only_and_its_split_is_trivially_fine():
    shadow = experiment((Variant("shadow", "4", 0.2, 0.0, 0.2),), shadow=True)
    readout = summarize(shadow, [CHAMPION, totals("shadow", 300, 90, 1)])
    assert [a.variant for a in readout.arms] == ["champion"]
    assert readout.comparisons == {} and readout.sample_ratio.p_value == 1.0
    assert guardrail(readout, 0.05) == (
        False,
        "a shadow experiment shows shoppers the champion only",
    )
    assert sample_ratio_result(readout).passed


def test_an_arm_nobody_configured_is_shown_and_breaks_the_sample_ratio():
    stray = totals("challenger_9", 5, 1, 0)
    readout = summarize(experiment(), [CHAMPION, CHALLENGER, stray])
    assert readout.arm("challenger_9").share is None
    assert readout.sample_ratio.mismatch()


def test_the_sample_ratio_check_fails_on_a_skewed_split_and_passes_on_a_balanced_one():
    skewed = summarize(
        experiment(), [totals("champion", 600, 60, 30), totals("challenger", 400, 40, 20)]
    )
    result = sample_ratio_result(skewed)
    # (600 - 500)²/500 + (400 - 500)²/500 = 40 on one degree of freedom: p = 2.5e-10.
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["chi_square"].value == pytest.approx(40.0)
    assert result.metadata["p_value"].value < 1e-9
    balanced = summarize(
        experiment(), [totals("champion", 500, 50, 25), totals("challenger", 500, 50, 25)]
    )
    assert sample_ratio_result(balanced).passed
    assert sample_ratio_result(None).passed  # no experiment yet: nothing to judge


def test_the_exposure_check_warns_until_every_arm_has_enough():
    readout = summarize(experiment(), [CHAMPION, totals("challenger", 150, 40, 3)])
    result = min_exposures_result(readout, 200)
    assert not result.passed and result.severity.value == "WARN"
    assert result.metadata["short"].value == "challenger"
    assert min_exposures_result(readout, 100).passed


def test_the_guardrail_check_says_whether_it_stopped_the_experiment():
    readout = summarize(experiment(), [CHAMPION, CHALLENGER])
    breached, reason = guardrail(readout, 0.05)
    stopped = experiment(status="stopped")
    result = guardrail_result(readout, breached, reason, stopped)
    assert not result.passed and result.severity.value == "ERROR"
    assert result.metadata["stopped_now"].value is True
    assert result.metadata["status"].value == "stopped"


def test_the_readout_is_plain_json_and_renders_as_tables():
    stray = totals("challenger_9", 5, 1, 0)
    document = summarize(experiment(), [CHAMPION, CHALLENGER, stray]).as_dict()
    json.dumps(document, allow_nan=False)  # jsonb refuses NaN and infinity
    assert document["sample_ratio"]["chi_square"] is None  # infinite: an arm nobody configured
    # Wilson, 150 of 1000: centre 0.151339, half-width 0.022129.
    assert document["arms"][1]["ctr"] == pytest.approx(
        {"estimate": 0.15, "low": 0.12921, "high": 0.17347}, abs=1e-5
    )
    table = readout_markdown(document)
    assert "| champion | 3 | 50% | 1000 | 100 | 0.1000 [0.0829, 0.1202] |" in table
    assert "| challenger | ctr | +0.0500 | [+0.0211, +0.0789] | +50.0% | 0.000723 |" in table
    assert "mismatch" in table


def test_a_model_card_records_the_online_evidence():
    readout = summarize(experiment(), [CHAMPION, CHALLENGER])
    decision = online_gate(readout, "challenger", "ctr", 0.05, 200)
    evidence = online_evidence(readout, "challenger", decision, "ctr")
    assert evidence["lifts"]["ctr"]["p_value"] == pytest.approx(0.000723, abs=2e-6)
    results = {"challenger": {"version": "4", "metrics": {"ndcg_at_10": 0.3}}}
    window = {"start": "2024-01-01", "cutoff": "2024-02-10", "end": "2024-03-01"}
    card = model_card(
        MODEL, "4", {}, window, results, "ndcg_at_10", ["ndcg_at_10"], True, "ok", "4", evidence
    )
    assert "**Online evidence**: experiment 7, challenger (version 4)" in card
    assert "Online gate on `ctr` passed: ctr challenger 0.1500" in card
    assert "| challenger | ctr | +0.0500 | [+0.0211, +0.0789] | +50.0% | 0.000723 |" in card


def test_the_metric_setting_names_the_readout_s_metrics():
    assert get_args(Environment.model_fields["experiment_metric"].annotation) == METRICS


@pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*")
@pytest.mark.filterwarnings("ignore:.*noload.*")
def test_online_evidence_is_written_onto_the_model_version(tmp_path):
    from ml import registry

    readout = summarize(experiment(), [CHAMPION, CHALLENGER])
    decision = GateDecision(True, "ctr: a significant gain")
    with mlflow_state_restored():
        registry.configure(tmp_path)
        client = registry.load_mlflow().MlflowClient()
        client.create_registered_model(MODEL)
        for _ in range(4):
            client.create_model_version(MODEL, source=str(tmp_path))
        with pytest.raises(ValueError, match="no challenger"):
            record_online_evidence(MODEL, "3", decision, readout)  # the champion
        record_online_evidence(MODEL, "4", decision, readout, "ctr")
        version = client.get_model_version(MODEL, "4")
    assert version.tags[registry.ONLINE_GATE] == "passed: ctr: a significant gain"
    evidence = json.loads(version.tags[registry.ONLINE_EVIDENCE])
    assert evidence["experiment_id"] == 7 and evidence["metric"] == "ctr"
    assert evidence["exposures"] == {"champion": 1000, "challenger": 1000}
    assert evidence["lifts"]["conversion"]["estimate"] == pytest.approx(-0.02)
    assert version.description.startswith("Online gate passed in experiment 7 (challenger;")
