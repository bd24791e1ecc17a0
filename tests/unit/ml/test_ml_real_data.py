"""The acceptance check on the real Online Retail sample (committed in tests/data)."""

import pytest

from ml.evaluate import format_report
from pulsemart.ml_store.retail import evaluate_file
from tests.data import RETAIL_SAMPLE as SAMPLE


@pytest.mark.slow
def test_default_recommender_doubles_popularity_ndcg_on_online_retail():
    result = evaluate_file(SAMPLE, k=10)

    assert result["ndcg_at_10_ratio"] >= 2.0
    default = result["recommenders"]["default"]["metrics"]
    assert default["customers"] > 1000
    assert result["propensity"]["metrics"]["roc_auc"] > 0.65
    assert result["data"]["rows_read"] == 240_007
    report = format_report(result)
    assert "NDCG@10 ratio default / popularity" in report and "ROC AUC" in report
