"""The session replay (ml.session_replay, ml.session_inputs) on frames small enough to work out
by hand."""

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from ml_builders import frame, taste_groups

from ml.blend import BlendWeights, Touch
from ml.interactions import from_frame
from ml.session_ablations import basket_neighbours, paced_session
from ml.session_inputs import (
    Basket,
    ReplayInputs,
    baskets,
    capped,
    history_at,
    prepare,
    purchase_history,
)
from ml.session_replay import NAMES, format_rows, rankers, replay, session_replay, step_scores
from ml.session_tuning import best_weights, grid_points, grid_search

AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
LOG3 = math.log2(3)


def hand_inputs() -> ReplayInputs:
    """One invoice a, b, c of customer x. The stored list has z then b; a's neighbour is c."""
    return ReplayInputs(
        baskets=[Basket("inv1", "x", AT, ("a", "b", "c"))],
        model={"x": [("z", 1.0), ("b", 0.5)]},
        history={},
        neighbours={"a": [("c", 0.9)]},
        trending=[("y", 10.0), ("w", 5.0)],
    )


def test_step_scores_by_hand():
    assert step_scores(["p", "q", "r"], {"q", "s"}) == (
        1.0,
        pytest.approx((1 / LOG3) / (1 + 1 / LOG3)),
    )
    assert step_scores(["p"], {"q"}) == (0.0, 0.0)
    assert step_scores(["q", "s"], {"q", "s"}) == (1.0, pytest.approx(1.0))


def test_replay_metrics_match_the_hand_computed_answer():
    inputs = hand_inputs()
    weights = BlendWeights(model=1.0, session=2.0, history=0.0, trending=0.1, cart=1.0)
    rows = {r["name"]: r for r in replay(inputs, rankers(inputs, weights))}
    assert [r for r in rows] == list(NAMES) and {r["steps"] for r in rows.values()} == {2}
    # batch_only always ranks z, b. After a: remaining {b, c}, b at rank 2. After a, b: {c}, miss.
    step_one = (1 / LOG3) / (1 + 1 / LOG3)
    assert rows["batch_only"]["hr_at_10"] == pytest.approx(0.5)
    assert rows["batch_only"]["ndcg_at_10"] == pytest.approx(step_one / 2)
    # popularity ranks y, w: never in the basket.
    assert rows["popularity"]["hr_at_10"] == 0.0 and rows["popularity"]["ndcg_at_10"] == 0.0
    # session_aware after a: c = 2 x 1 x 0.9 / 0.9 = 2, z = 1, b = 0.5, y = 0.1, w = 0.05, so
    # c is 1st and b 3rd: (1 + 1/log2(4)) / (1 + 1/log2(3)). After a, b: b is in the basket
    # (excluded), c first: NDCG 1.
    first = (1 + 0.5) / (1 + 1 / LOG3)
    assert rows["session_aware"]["hr_at_10"] == pytest.approx(1.0)
    assert rows["session_aware"]["ndcg_at_10"] == pytest.approx((first + 1.0) / 2)


def test_history_touches_lend_their_neighbours_within_the_fold_s_age_bound():
    inputs = ReplayInputs(
        baskets=[Basket("inv1", "x", AT, ("a", "b"))],
        model={},
        history={"x": [Touch("h", "purchase", AT - timedelta(days=1), False)]},
        neighbours={"h": [("b", 1.0)]},
        trending=[("y", 1.0)],
    )
    weights = BlendWeights(history=1.0, trending=0.01)
    [session] = replay(inputs, {"s": rankers(inputs, weights)["session_aware"]})
    assert session["hr_at_10"] == 1.0
    # Older than the 30 days the fold keeps: it lends nothing, trending fills the list.
    too_old = {"x": [Touch("h", "purchase", AT - timedelta(days=31), False)]}
    stale = ReplayInputs(inputs.baskets, {}, too_old, inputs.neighbours, inputs.trending)
    [session] = replay(stale, {"s": rankers(stale, weights)["session_aware"]})
    assert session["hr_at_10"] == 0.0


def test_baskets_keep_file_order_and_reveal_a_repeated_product_once():
    lines = from_frame(
        pd.DataFrame(
            {
                "customer_id": ["x", "x", "x", "x", "y"],
                "product_id": ["c", "a", "c", "b", "a"],
                "event_time": [AT] * 4 + [AT - timedelta(hours=1)],
                "event_type": "purchase",
                "order_id": ["i2", "i2", "i2", "i2", "i1"],
            }
        )
    )
    found = baskets(lines)
    assert [(b.order_id, b.products, b.steps) for b in found] == [
        ("i1", ("a",), 0),
        ("i2", ("c", "a", "b"), 2),
    ]


def test_purchase_history_is_newest_first_and_bounded():
    train = frame([("x", f"p{i}", i) for i in range(30)] + [("x", "p0", 40)])
    history = purchase_history(train, kept=3)["x"]
    assert [t.product_id for t in history] == ["p0", "p29", "p28"]
    assert all(t.kind == "purchase" and not t.in_session for t in history)
    now = history[0].at
    assert [t.product_id for t in history_at(history, now, timedelta(days=12))] == ["p0", "p29"]
    assert history_at(history, now, None) == history


def test_capped_keeps_whole_invoices_the_same_way_every_time():
    many = [Basket(f"i{n}", "x", AT + timedelta(minutes=n), ("a", "b", "c")) for n in range(50)]
    inputs = ReplayInputs(many, {}, {}, {}, [])
    assert capped(inputs, None) is inputs and capped(inputs, 1000) is inputs
    small = capped(inputs, 21)
    assert small.steps == 22 and small == capped(inputs, 21)
    assert [b.at for b in small.baskets] == sorted(b.at for b in small.baskets)


def test_session_replay_runs_end_to_end_on_a_time_split():
    train = taste_groups()
    train = train[train["event_time"] < pd.Timestamp("2024-03-01", tz="UTC")]
    # Test invoices: one per customer of group 0, three of its products in one order.
    late = pd.Timestamp("2024-04-01", tz="UTC")
    test = from_frame(
        pd.DataFrame(
            {
                "customer_id": [f"g0c{c}" for c in range(6) for _ in range(3)],
                "product_id": ["g0p1", "g0p2", "g0p3"] * 6,
                "event_time": late,
                "event_type": "purchase",
                "order_id": [f"t{c}" for c in range(6) for _ in range(3)],
            }
        )
    )
    interactions = pd.concat([train, test], ignore_index=True)
    rows = session_replay(interactions, BlendWeights())
    assert [r["name"] for r in rows] == list(NAMES)
    assert {r["steps"] for r in rows} == {12}
    assert all(0.0 <= r["hr_at_10"] <= 1.0 and 0.0 <= r["ndcg_at_10"] <= 1.0 for r in rows)
    table = format_rows(rows)
    assert "session_aware" in table and "HR@10 ratio session_aware / batch_only" in table
    inputs = prepare(train, test)
    assert set(inputs.model) == {f"g0c{c}" for c in range(6)} and len(inputs.trending) > 0


def test_grid_search_ranks_points_and_the_best_becomes_weights():
    inputs = hand_inputs()
    points = grid_points({"session": (0.0, 2.0), "trending": (0.1,)}, BlendWeights(cart=1.0))
    assert [(p.session, p.trending) for p in points] == [(0.0, 0.1), (2.0, 0.1)]
    rows = grid_search(inputs, points)
    assert rows[0]["session"] == 2.0 and rows[0]["hr_at_10"] >= rows[1]["hr_at_10"]
    chosen = best_weights(rows)
    assert chosen == BlendWeights(session=2.0, trending=0.1, cart=1.0)


def test_basket_neighbours_count_invoices_not_customers():
    # x buys a and b on one invoice and c on another: a-b share an invoice, a-c never do.
    train = from_frame(
        pd.DataFrame(
            {
                "customer_id": ["x", "x", "x", "y", "y"],
                "product_id": ["a", "b", "c", "a", "b"],
                "event_time": [AT, AT, AT + timedelta(days=1), AT, AT],
                "event_type": "purchase",
                "order_id": ["o1", "o1", "o2", "o3", "o3"],
            }
        )
    )
    lists = basket_neighbours(train)
    assert lists["a"] == [("b", pytest.approx(2 / (2 + 10)))]  # shrunk cosine, shrink 10
    assert "c" not in lists


def test_paced_reveal_lends_most_from_the_last_item():
    inputs = ReplayInputs(
        baskets=[Basket("inv1", "x", AT, ("a", "b", "c"))],
        model={},
        history={},
        neighbours={"a": [("c", 1.0)], "b": [("d", 1.0), ("c", 0.3)]},
        trending=[],
    )
    # session_decay 1: only the paced times order the items here.
    weights = BlendWeights(session=1.0, trending=0.01, half_life_s=60.0, cart=1.0, session_decay=1)
    basket = inputs.baskets[0]
    # At the invoice time both lend in full: c = 1 + 0.3, d = 1.
    assert rankers(inputs, weights)["session_aware"](basket, 2)[:2] == ["c", "d"]
    # A minute apart, a lends half: c = 0.5 + 0.3, d = 1.
    assert paced_session(inputs, weights, pace=timedelta(seconds=60))(basket, 2)[:2] == ["d", "c"]
    assert paced_session(inputs, weights, pace=timedelta(0))(basket, 2)[:2] == ["c", "d"]
