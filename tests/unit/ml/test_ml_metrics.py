import math

import numpy as np
import pandas as pd
import pytest

from ml.metrics import (
    average_precision_at_k,
    calibration_table,
    classification_metrics,
    expected_calibration_error,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

# Customer "a": hits at ranks 1 and 3 out of 4 relevant products.
RECS = ["p1", "p2", "p3", "p4", "p5"]
RELEVANT = {"p1", "p3", "p8", "p9"}


def test_single_list_metrics_by_hand():
    assert precision_at_k(RECS, RELEVANT, 5) == pytest.approx(2 / 5)
    assert recall_at_k(RECS, RELEVANT, 5) == pytest.approx(2 / 4)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # ranks 1 and 3
    idcg = sum(1 / math.log2(r + 1) for r in range(1, 5))  # 4 relevant, all could fit in 5
    assert ndcg_at_k(RECS, RELEVANT, 5) == pytest.approx(dcg / idcg)
    assert average_precision_at_k(RECS, RELEVANT, 5) == pytest.approx((1 / 1 + 2 / 3) / 4)
    # At k=2 only one hit (rank 1); the ideal has 2 slots.
    assert ndcg_at_k(RECS, RELEVANT, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert average_precision_at_k(RECS, RELEVANT, 2) == pytest.approx(1 / 2)


def test_perfect_and_empty_rankings():
    assert ndcg_at_k(["x", "y"], {"x", "y"}, 2) == pytest.approx(1.0)
    assert average_precision_at_k(["x", "y"], {"x", "y"}, 2) == pytest.approx(1.0)
    assert ndcg_at_k(["z"], {"x"}, 1) == 0.0
    assert recall_at_k(["z"], set(), 1) == 0.0


def _recs(lists):
    return pd.DataFrame(
        [(c, p, r) for c, items in lists.items() for r, p in enumerate(items, start=1)],
        columns=["customer_id", "product_id", "rank"],
    )


def test_frame_metrics_match_the_single_list_definitions():
    lists = {"a": RECS, "b": ["p3", "p9", "p1", "p2", "p4"], "c": ["p7"] * 1}
    truth = {"a": RELEVANT, "b": {"p9"}, "c": {"p1", "p2"}, "d": {"p1"}}  # d: no recs
    relevant = pd.DataFrame(
        [(c, p) for c, ps in truth.items() for p in sorted(ps)] + [("b", "p9")],
        columns=["customer_id", "product_id"],
    )  # a duplicate is ignored
    result = ranking_metrics(_recs(lists), relevant, k=5, catalog_size=10)

    def mean(fn):
        return np.mean([fn(lists.get(c, []), ps, 5) for c, ps in truth.items()])

    assert result["precision_at_5"] == pytest.approx(mean(precision_at_k))
    assert result["recall_at_5"] == pytest.approx(mean(recall_at_k))
    assert result["ndcg_at_5"] == pytest.approx(mean(ndcg_at_k))
    assert result["map_at_5"] == pytest.approx(mean(average_precision_at_k))
    assert result["customers"] == 4
    # Distinct recommended products to these customers: p1..p5, p9, p7.
    assert result["coverage"] == pytest.approx(7 / 10)
    # Customer b by hand: one hit at rank 2 of 1 relevant.
    assert ndcg_at_k(lists["b"], truth["b"], 5) == pytest.approx(1 / math.log2(3))


def test_ranks_beyond_k_do_not_count():
    recs = _recs({"a": ["x", "y", "hit"]})
    relevant = pd.DataFrame({"customer_id": ["a"], "product_id": ["hit"]})
    assert ranking_metrics(recs, relevant, k=2)["ndcg_at_2"] == 0.0
    assert ranking_metrics(recs, relevant, k=3)["ndcg_at_3"] == pytest.approx(0.5)


def test_calibration_table_and_ece_by_hand():
    y = [0, 0, 1, 1, 1, 0]
    p = [0.1, 0.1, 0.1, 0.9, 0.9, 1.0]
    table = calibration_table(y, p, bins=2)
    # Bin [0, .5): predicted .1, observed 1/3; bin [.5, 1]: predicted 2.8/3, observed 2/3.
    assert table["count"].tolist() == [3, 3]
    assert table["mean_predicted"].tolist() == pytest.approx([0.1, 2.8 / 3])
    assert table["observed_rate"].tolist() == pytest.approx([1 / 3, 2 / 3])
    expected = 0.5 * abs(0.1 - 1 / 3) + 0.5 * abs(2.8 / 3 - 2 / 3)
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(expected)


def test_classification_metrics_by_hand():
    y = [0, 0, 1, 1]
    p = [0.1, 0.6, 0.4, 0.8]
    result = classification_metrics(y, p, bins=10)
    # Positive/negative pairs ordered correctly: (.4>.1), (.8>.1), (.8>.6); wrong: (.4<.6).
    assert result["roc_auc"] == pytest.approx(3 / 4)
    # Ranking .8(+) .6(-) .4(+) .1(-): precision at each positive is 1 and 2/3.
    assert result["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert result["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.04) / 4)
    assert result["base_rate"] == 0.5
    assert math.isnan(classification_metrics([1, 1], [0.2, 0.9])["roc_auc"])
