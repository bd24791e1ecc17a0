"""Sequential rules (ml.sequences) and the neighbours a version publishes with them
(ml.neighbours.published_neighbours), held to hand-computed cases."""

import numpy as np
import pandas as pd
import pytest

from ml.interactions import from_frame
from ml.neighbours import item_neighbours, published_neighbours
from ml.recommenders import ItemKNNRecommender
from ml.sequences import BACKWARD, pruned, sequence_rules

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def lines(rows):
    """Interactions from (customer, product, minute, order_id, session_id), in row order."""
    return from_frame(
        pd.DataFrame(
            [
                {
                    "customer_id": customer,
                    "product_id": product,
                    "event_time": T0 + pd.Timedelta(minutes=minute),
                    "event_type": "purchase" if order else "view",
                    "order_id": order,
                    "session_id": session,
                }
                for customer, product, minute, order, session in rows
            ]
        )
    )


# Order o1 lists a, b, c; order o2 lists b, a (and b again); session s1 views c then d; the
# last row has neither order nor session and teaches nothing.
ROWS = [
    ("u1", "a", 0, "o1", None),
    ("u1", "b", 0, "o1", None),
    ("u1", "c", 0, "o1", None),
    ("u2", "b", 1, "o2", None),
    ("u2", "a", 1, "o2", None),
    ("u2", "b", 1, "o2", None),
    ("u3", "c", 2, None, "s1"),
    ("u3", "d", 3, None, "s1"),
    ("u4", "a", 4, None, None),
    ("u4", "d", 4, None, None),
]
PRODUCTS = pd.Index(["a", "b", "c", "d"])


def rules(rows=ROWS, **kwargs):
    matrix = sequence_rules(lines(rows), PRODUCTS, **kwargs).toarray()
    return {
        (PRODUCTS[i], PRODUCTS[j]): float(matrix[i, j])
        for i, j in zip(*np.nonzero(matrix), strict=True)
    }


def test_each_product_lends_the_next_by_the_gap_and_the_previous_by_half_as_much():
    assert rules() == pytest.approx(
        {
            ("a", "b"): 1.0 + BACKWARD,  # next in o1; before it in o2
            ("b", "a"): BACKWARD + 1.0,  # before it in o1; next in o2 (b's repeat is ignored)
            ("a", "c"): 1 / 2,
            ("c", "a"): BACKWARD / 2,
            ("b", "c"): 1.0,
            ("c", "b"): BACKWARD,
            ("c", "d"): 1.0,  # the session, where there is no order
            ("d", "c"): BACKWARD,
        }
    )


def test_the_window_bounds_how_far_apart_products_still_lend():
    assert ("a", "c") not in rules(window=1) and ("a", "b") in rules(window=1)


def test_products_outside_the_model_s_index_are_left_out():
    matrix = sequence_rules(lines(ROWS), pd.Index(["a", "b"]))
    assert matrix.shape == (2, 2) and matrix.toarray()[0, 1] == pytest.approx(1.0 + BACKWARD)


def test_pruning_keeps_each_row_s_strongest():
    kept = pruned(sequence_rules(lines(ROWS), PRODUCTS), 1).toarray()
    assert (np.count_nonzero(kept, axis=1) <= 1).all()
    assert kept[0, 1] == pytest.approx(1.0 + BACKWARD)  # a's best is b, not c


def test_a_version_publishes_its_rules_and_its_similarity_for_products_no_basket_ordered():
    # e was bought by u1 alone, on an order of its own: no rule, so the similarity speaks for it.
    rows = [*ROWS, ("u1", "e", 9, "o3", None)]
    model = ItemKNNRecommender(neighbours=10, shrink=0.0).fit(lines(rows))
    published = published_neighbours(model, n=2)
    by_product = {p: list(g["neighbour_id"]) for p, g in published.groupby("product_id")}
    assert by_product["a"] == ["b", "c"] and by_product["c"] == ["d", "b"]
    own = item_neighbours(model, n=2)
    assert by_product["e"] == list(own[own["product_id"] == "e"]["neighbour_id"])
    assert (
        published.groupby("product_id")["rank"]
        .apply(list)
        .map(lambda r: r == [1, 2][: len(r)])
        .all()
    )


def test_a_version_fitted_without_rules_publishes_its_similarity():
    model = ItemKNNRecommender(neighbours=10, shrink=0.0).fit(lines(ROWS))
    del model.sequences_
    pd.testing.assert_frame_equal(published_neighbours(model, n=3), item_neighbours(model, n=3))
