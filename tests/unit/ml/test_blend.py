"""The blend: what each source lends, what is excluded, and how each item is explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ml.blend import BlendWeights, Touch, blend

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
# session_decay 1: the session's order plays no part unless a test sets it.
W = BlendWeights(
    model=1.0,
    session=1.0,
    history=0.5,
    trending=0.1,
    half_life_s=600,
    history_half_life_s=86400,
    session_decay=1.0,
)


# The session's order only: each earlier product lends half of the one after it, and time
# decays nothing within these tests.
ORDERED = BlendWeights(session=1.0, history=0.0, trending=0.0, session_decay=0.5, half_life_s=1e12)


def run(weights=W, **kwargs):
    args = {"model": [], "touches": [], "neighbours": {}, "trending": [], "now": NOW, "k": 10}
    return blend(weights=weights, **{**args, **kwargs})


def test_without_touches_the_model_order_is_kept_and_trending_comes_last():
    out = run(model=[("A", 4.0), ("B", 2.0)], trending=[("T", 100.0)])
    assert [(b.product_id, b.source, b.because) for b in out] == [
        ("A", "model", ()),
        ("B", "model", ()),
        ("T", "trending", ()),
    ]
    assert out[0].score == 1.0 and out[1].score == 0.5  # scaled by the source's best score


def test_a_session_touch_lends_its_neighbours_and_names_itself():
    touches = [Touch("V", "view", NOW, True)]
    out = run(model=[("A", 1.0)], touches=touches, neighbours={"V": [("N", 0.9), ("M", 0.3)]})
    by_id = {b.product_id: b for b in out}
    assert by_id["N"].because == ("V",) and by_id["N"].source == "session"
    assert by_id["N"].score > by_id["M"].score and "V" not in by_id


def test_kinds_and_recency_weigh_what_a_touch_lends():
    touches = [
        Touch("OLD", "view", NOW - timedelta(seconds=600), True),  # one half-life ago
        Touch("NEW", "view", NOW, True),
        Touch("CART", "cart", NOW, True),
    ]
    neighbours = {"OLD": [("X", 1.0)], "NEW": [("Y", 1.0)], "CART": [("Z", 1.0)]}
    scores = {b.product_id: b.score for b in run(touches=touches, neighbours=neighbours)}
    assert scores["Y"] == 2 * scores["X"]  # halved by one half-life
    assert scores["Z"] == W.cart * scores["Y"]  # a cart addition lends `cart` views' worth


def test_history_lends_less_than_the_session_and_both_are_named_strongest_first():
    touches = [Touch("H", "purchase", NOW, False), Touch("S", "purchase", NOW, True)]
    out = run(touches=touches, neighbours={"H": [("N", 1.0)], "S": [("N", 1.0)]})
    [item] = out
    assert item.because == ("S", "H") and item.source == "session"


def test_products_carted_or_bought_in_the_session_are_not_recommended_again():
    touches = [Touch("C", "cart", NOW, True), Touch("V", "view", NOW, True)]
    out = run(model=[("C", 5.0), ("V", 4.0)], touches=touches, neighbours={"V": [("C", 1.0)]}, k=5)
    assert [b.product_id for b in out] == ["V"]  # a viewed product may come back; C may not


def test_k_bounds_the_list_and_ties_break_by_product_id():
    out = run(trending=[("B", 1.0), ("A", 1.0), ("C", 1.0)], k=2)
    assert [b.product_id for b in out] == ["A", "B"]


def test_the_latest_session_product_lends_most_and_each_earlier_one_less_by_the_decay():
    neighbours = {"A": [("X", 1.0)], "B": [("Y", 1.0)], "C": [("Z", 1.0)]}
    # A and B at one moment (listed oldest first), C a second later: C, then B, then A.
    touches = [
        Touch("A", "view", NOW - timedelta(seconds=1), True),
        Touch("B", "view", NOW - timedelta(seconds=1), True),
        Touch("C", "view", NOW, True),
        Touch("H", "view", NOW - timedelta(days=1), False),  # history: no place in the order
    ]
    out = run(ORDERED, touches=touches, neighbours={**neighbours, "H": [("Q", 1.0)]})
    scores = {b.product_id: b.score for b in out}
    assert scores["Y"] == pytest.approx(0.5 * scores["Z"])
    assert scores["X"] == pytest.approx(0.25 * scores["Z"])
    assert "Q" not in scores  # history weight 0


def test_a_product_touched_again_takes_the_place_of_its_latest_touch():
    touches = [
        Touch("A", "view", NOW - timedelta(seconds=2), True),
        Touch("B", "view", NOW - timedelta(seconds=1), True),
        Touch("A", "view", NOW, True),
    ]
    out = run(ORDERED, touches=touches, neighbours={"A": [("X", 1.0)], "B": [("Y", 1.0)]})
    scores = {b.product_id: b.score for b in out}
    assert scores["Y"] == pytest.approx(0.5 * scores["X"])
