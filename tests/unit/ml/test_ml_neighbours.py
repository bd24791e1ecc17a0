"""Item neighbours of every recommender (ml.neighbours), held to hand-computed cases."""

import numpy as np
import pytest
from ml_builders import frame

from ml.neighbours import (
    NEIGHBOUR_COLUMNS,
    coverage,
    item_neighbours,
    neighbour_lists,
    unknown_products,
)
from ml.recommenders import ItemKNNRecommender, PopularityRecommender, SVDRecommender

# a and b share two buyers, b and c one, a and c none; d's only buyer bought nothing else.
ROWS = [
    ("u1", "a", 0),
    ("u1", "b", 1),
    ("u2", "a", 0),
    ("u2", "b", 2),
    ("u4", "b", 2),
    ("u4", "c", 3),
    ("u3", "d", 0),
]
AB = 2 / (2**0.5 * 3**0.5 + 10)  # shrunk cosine: shared buyers / (|a| |b| + 10)
BC = 1 / (3**0.5 * 1 + 10)


def check_shape(neighbours, model, n):
    assert tuple(neighbours.columns) == NEIGHBOUR_COLUMNS
    assert (neighbours["product_id"] != neighbours["neighbour_id"]).all()
    assert (neighbours["score"] > 0).all()
    assert unknown_products(neighbours, model.products) == 0
    for _, group in neighbours.groupby("product_id"):
        assert list(group["rank"]) == list(range(1, len(group) + 1)) and len(group) <= n
        assert group["score"].is_monotonic_decreasing


def test_item_knn_neighbours_are_its_similarity_rows_best_first(groups_frame):
    model = ItemKNNRecommender(neighbours=5, shrink=0.0).fit(groups_frame)
    neighbours = item_neighbours(model, n=3)
    check_shape(neighbours, model, 3)
    similarity = model.similarity_.toarray()
    products = list(model.products)
    for product, group in neighbours.groupby("product_id"):
        row = similarity[products.index(product)]
        expected = np.sort(row[row > 0])[::-1][:3]
        assert group["score"].to_numpy() == pytest.approx(expected, rel=1e-6)
    # Taste groups never mix: every neighbour is from the product's own group.
    assert (neighbours["product_id"].str[:2] == neighbours["neighbour_id"].str[:2]).all()


def test_svd_neighbours_are_the_cosine_of_item_factors(groups_frame):
    model = SVDRecommender(factors=4).fit(groups_frame)
    neighbours = item_neighbours(model, n=4)
    check_shape(neighbours, model, 4)
    vectors = model.item_factors_.T
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    first = neighbours.iloc[0]
    i, j = (list(model.products).index(first[c]) for c in ("product_id", "neighbour_id"))
    assert first["score"] == pytest.approx(float(unit[i] @ unit[j]), rel=1e-5)
    cosines = unit[i] @ unit.T
    cosines[i] = -np.inf  # products of one taste group can tie, so compare the best score
    assert first["score"] == pytest.approx(float(cosines.max()), rel=1e-5)


def test_popularity_publishes_shrunk_customer_cooccurrence():
    model = PopularityRecommender().fit(frame(ROWS))
    neighbours = item_neighbours(model, n=5)
    check_shape(neighbours, model, 5)
    lists = neighbour_lists(neighbours)
    assert lists["a"] == [("b", pytest.approx(AB))]
    assert lists["b"] == [("a", pytest.approx(AB)), ("c", pytest.approx(BC))]
    assert lists["c"] == [("b", pytest.approx(BC))]
    assert "d" not in lists  # nobody who bought d bought anything else
    assert coverage(neighbours, model.products) == pytest.approx(3 / 4)
    assert coverage(neighbours, ["a", "zzz"]) == pytest.approx(1 / 2)
    assert coverage(neighbours, []) == 0.0


def test_n_bounds_the_neighbours_per_product(groups_frame):
    model = ItemKNNRecommender().fit(groups_frame)
    assert item_neighbours(model, n=2).groupby("product_id").size().max() == 2
    with pytest.raises(ValueError, match="at least 1"):
        item_neighbours(model, n=0)
    with pytest.raises(RuntimeError, match="fit"):
        item_neighbours(ItemKNNRecommender())


def test_unknown_products_counts_rows_naming_an_untrained_product():
    model = PopularityRecommender().fit(frame(ROWS))
    neighbours = item_neighbours(model)
    assert unknown_products(neighbours, ["a", "b"]) == 2  # b -> c and c -> b
    assert unknown_products(neighbours, model.products) == 0
