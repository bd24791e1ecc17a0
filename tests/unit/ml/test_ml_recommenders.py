import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from ml_builders import frame

from ml.evaluate import evaluate_recommenders
from ml.recommenders import (
    DEFAULT_PARAMS,
    ItemKNNRecommender,
    PopularityRecommender,
    SVDRecommender,
    make_recommender,
)
from ml.recommenders.item_knn import item_similarity
from ml.recommenders.matrix import Weighting, interaction_matrix
from ml.split import time_split

MODELS = [
    pytest.param(lambda: PopularityRecommender(), id="popularity"),
    pytest.param(lambda: make_recommender(), id="default"),
    pytest.param(
        lambda: ItemKNNRecommender(repurchase_weight=0, popularity_weight=0), id="knn-only"
    ),
    pytest.param(lambda: SVDRecommender(factors=4), id="svd"),
]


@pytest.mark.parametrize("build", MODELS)
@pytest.mark.parametrize("exclude_seen", [False, True])
def test_recommendation_contract(groups_frame, build, exclude_seen):
    model = build().fit(groups_frame)
    customers = ["g0c0", "g1c3", "unknown", "g0c0"]  # a duplicate and a stranger
    recs = model.recommend(customers, k=5, exclude_seen=exclude_seen)

    assert list(recs.columns) == ["customer_id", "product_id", "rank", "score"]
    assert recs["customer_id"].unique().tolist() == ["g0c0", "g1c3", "unknown"]
    for _, rows in recs.groupby("customer_id"):
        assert rows["rank"].tolist() == [1, 2, 3, 4, 5]
        assert rows["product_id"].is_unique
        assert rows["score"].is_monotonic_decreasing
    if exclude_seen:
        seen = set(zip(groups_frame["customer_id"], groups_frame["product_id"], strict=True))
        assert not any(
            (c, p) in seen for c, p in zip(recs["customer_id"], recs["product_id"], strict=True)
        )


def test_unknown_customers_get_the_most_popular(groups_frame):
    recs = make_recommender().fit(groups_frame).recommend(["stranger"], k=3)
    buyers = groups_frame.groupby("product_id")["customer_id"].nunique()
    assert buyers.loc[recs["product_id"]].tolist() == sorted(buyers, reverse=True)[:3]


def test_exclude_seen_can_leave_fewer_than_k():
    interactions = frame([("a", "x", 0), ("a", "y", 1), ("b", "x", 2), ("b", "z", 3)])
    recs = PopularityRecommender().fit(interactions).recommend(["a"], k=3, exclude_seen=True)
    assert recs["product_id"].tolist() == ["z"]
    assert recs["rank"].tolist() == [1]


def test_popularity_by_customers_and_by_units():
    interactions = frame(
        [("a", "x", 0, "purchase", 1), ("b", "x", 1, "purchase", 1), ("c", "y", 2, "purchase", 500)]
    )
    by_customers = PopularityRecommender().fit(interactions).recommend(["z"], k=2)
    by_units = PopularityRecommender(by="quantity").fit(interactions).recommend(["z"], k=2)
    assert by_customers["product_id"].tolist() == ["x", "y"]
    assert by_units["product_id"].tolist() == ["y", "x"]


def test_item_knn_beats_popularity_when_tastes_differ(groups_frame):
    split = time_split(groups_frame, 2 / 3)
    table = evaluate_recommenders(
        split.train,
        split.test,
        {
            "popularity": PopularityRecommender(),
            "knn": ItemKNNRecommender(repurchase_weight=0, popularity_weight=0),
            "default": make_recommender(),
        },
        k=5,
        exclude_seen=True,
    )
    assert table.loc["knn", "ndcg_at_5"] > 2 * table.loc["popularity", "ndcg_at_5"]
    assert table.loc["default", "ndcg_at_5"] > table.loc["popularity", "ndcg_at_5"]
    # Products never cross the groups: the neighbours-only model recommends within the group.
    recs = (
        ItemKNNRecommender(repurchase_weight=0, popularity_weight=0, neighbours=0)
        .fit(split.train)
        .recommend(["g0c0", "g2c5"], k=3, exclude_seen=True)
    )
    assert all(
        p.startswith(c[:2]) for c, p in zip(recs["customer_id"], recs["product_id"], strict=True)
    )


def test_repurchase_weight_ranks_own_frequent_items_first():
    interactions = frame(
        [("a", "fav", d) for d in (0, 1, 2)]
        + [("b", "pop", 0), ("c", "pop", 1), ("d", "pop", 2), ("a", "x", 3)]
    )
    only_own = ItemKNNRecommender(repurchase_weight=1.0, popularity_weight=0.0, half_life_days=None)
    recs = only_own.fit(interactions).recommend(["a"], k=3)
    assert recs["product_id"].tolist() == ["fav", "x", "pop"]


def test_similarity_is_shrunk_cosine_without_diagonal():
    # Products 0 and 1 share two buyers; product 2 shares one buyer with product 1.
    values = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))
    sim = item_similarity(values, shrink=0.0, neighbours=0).toarray()
    assert np.diag(sim).tolist() == [0, 0, 0]
    assert sim[0, 1] == pytest.approx(1.0)
    assert sim[1, 2] == pytest.approx(1 / 2)  # 1 / (sqrt 2 * sqrt 2)
    assert sim[0, 2] == pytest.approx(1 / 2)
    shrunk = item_similarity(values, shrink=2.0, neighbours=0).toarray()
    assert shrunk[0, 1] == pytest.approx(2 / 4)
    top1 = item_similarity(values, shrink=0.0, neighbours=1).toarray()
    assert (top1 > 0).sum(axis=1).tolist() == [1, 1, 1]
    assert top1[0, 1] == pytest.approx(1.0)


def test_matrix_counts_orders_not_lines_and_weights_views():
    interactions = frame(
        [("a", "x", 0), ("a", "x", 0), ("a", "x", 5), ("a", "y", 1, "view"), ("a", "y", 2, "view")]
    )
    matrix = interaction_matrix(interactions)
    dense = pd.DataFrame(matrix.values.toarray(), index=matrix.customers, columns=matrix.products)
    assert dense.loc["a", "x"] == pytest.approx(2.0)  # two orders, one with two lines
    assert dense.loc["a", "y"] == pytest.approx(0.2)  # two views at 0.1


def test_bm25_damps_heavy_customers_and_popular_products():
    values = sp.csr_matrix(np.array([[10, 1], [1, 0], [1, 0]], dtype=np.float32))
    weighting = Weighting("bm25", k1=1.2, b=0.75).fit(values)
    weighted = weighting.transform(values).toarray()
    # idf: product 0 bought by all 3 customers, product 1 by one.
    assert weighting.idf_.tolist() == pytest.approx([np.log(2), np.log(4)])
    # A light customer (basket 1, mean basket 13/3): tf = 2.2 / (1 + 1.2 * (.25 + .75 * 3/13)).
    light_tf = 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3 / 13))
    assert weighted[1, 0] == pytest.approx(light_tf * np.log(2), rel=1e-5)
    assert weighted[0, 0] < 2 * weighted[1, 0]  # ten orders saturate: not 10x one order
    assert Weighting("tfidf").fit_transform(values).toarray()[1, 1] == 0


def test_params_round_trip():
    for model in (make_recommender(), SVDRecommender(factors=8), PopularityRecommender("quantity")):
        assert make_recommender(model.to_params()).to_params() == model.to_params()
    assert make_recommender().to_params() | DEFAULT_PARAMS == make_recommender().to_params()
    with pytest.raises(ValueError, match="sum to at most 1"):
        ItemKNNRecommender(repurchase_weight=0.8, popularity_weight=0.3)


def test_scoring_is_chunked_without_changing_results(groups_frame):
    model = make_recommender().fit(groups_frame)
    customers = sorted(groups_frame["customer_id"].unique())
    whole = model.recommend(customers, k=4)
    model.chunk_size = 5
    pd.testing.assert_frame_equal(model.recommend(customers, k=4), whole)
