"""What the session replay (ml.session_replay) reads, prepared once from a time split.

The test period's invoices (each with its distinct products in file order), the champion's
stored list per customer, the customer's earlier purchases as the serving fold would hold them,
the champion's item neighbours and the popularity list. Prepared once, they serve every weight
of a grid (ml.session_tuning) without refitting.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from ml.blend import Touch
from ml.interactions import purchases
from ml.neighbours import neighbour_lists, published_neighbours
from ml.recommenders import DEFAULT_PARAMS, PopularityRecommender, Recommender, make_recommender

MODEL_LIST = 20  # products stored per customer (pulsemart.ml_store.scoring.SCORED_PER_CUSTOMER)
TRENDING_POOL = 50  # trending candidates the API hands the blend (pulsemart.serving.personal)
# What the serving fold keeps of a customer's earlier touches (pulsemart.serving.fold): the
# newest 20 (product, kind) entries, none older than 30 days before the newest event.
HISTORY_KEPT = 20
HISTORY_MAX_AGE = timedelta(days=30)

Pairs = list[tuple[str, float]]
Progress = Callable[[int, int], None]  # (done, in all)


@dataclass(frozen=True)
class Basket:
    """One invoice: who, when, and its distinct products in file order."""

    order_id: str
    customer_id: str
    at: datetime
    products: tuple[str, ...]

    @property
    def steps(self) -> int:
        return max(len(self.products) - 1, 0)


@dataclass(frozen=True)
class ReplayInputs:
    """Everything the replay's recommenders read."""

    baskets: list[Basket]
    model: Mapping[str, Pairs]  # customer -> the champion's stored list (product, score)
    history: Mapping[str, list[Touch]]  # customer -> train-period purchases, newest first
    neighbours: Mapping[str, Pairs]
    trending: Pairs

    @property
    def steps(self) -> int:
        return sum(b.steps for b in self.baskets)


def baskets(test: pd.DataFrame) -> list[Basket]:
    """The purchases of `test` as invoices, in time order (file order within an invoice).

    The frame's row order is the file's (ml.interactions sorts by time with a stable sort); an
    invoice without an order id is the customer's lines at one moment.
    """
    lines = purchases(test)
    order = lines["order_id"].astype(object)
    fallback = lines["customer_id"].astype(str) + "@" + lines["event_time"].astype(str)
    lines = lines.assign(order_key=order.where(order.notna(), fallback).astype(str))
    lines = lines.drop_duplicates(["order_key", "product_id"])
    out = [
        Basket(
            str(key),
            str(group["customer_id"].iloc[0]),
            group["event_time"].min().to_pydatetime(),
            tuple(group["product_id"].astype(str)),
        )
        for key, group in lines.groupby("order_key", sort=False)
    ]
    return sorted(out, key=lambda b: (b.at, b.order_id))


def purchase_history(train: pd.DataFrame, kept: int = HISTORY_KEPT) -> dict[str, list[Touch]]:
    """Each customer's train-period purchases as earlier touches: latest time per product,
    newest first, at most `kept` (the age bound depends on the moment: see `history_at`)."""
    lines = purchases(train)[["customer_id", "product_id", "event_time"]]
    latest = lines.groupby(["customer_id", "product_id"], sort=False)["event_time"].max()
    frame = latest.reset_index().sort_values(
        ["customer_id", "event_time", "product_id"], ascending=[True, False, True]
    )
    frame = frame[frame.groupby("customer_id").cumcount() < kept]
    history: dict[str, list[Touch]] = {}
    for customer, product, at in zip(
        frame["customer_id"], frame["product_id"], frame["event_time"], strict=True
    ):
        history.setdefault(str(customer), []).append(
            Touch(str(product), "purchase", at.to_pydatetime(), False)
        )
    return history


def history_at(touches: Sequence[Touch], now: datetime, max_age: timedelta | None) -> list[Touch]:
    """The earlier touches the fold would still hold at `now`."""
    if max_age is None:
        return list(touches)
    return [t for t in touches if t.at > now - max_age]


def model_lists(recommender: Recommender, customers: Sequence[str], k: int) -> dict[str, Pairs]:
    """The recommender's top `k` (product, score) per customer, as batch scoring stores them."""
    recs = recommender.recommend(list(customers), k=k)
    lists: dict[str, Pairs] = {}
    for customer, product, score in zip(
        recs["customer_id"], recs["product_id"], recs["score"], strict=True
    ):
        lists.setdefault(str(customer), []).append((str(product), float(score)))
    return lists


def prepare(
    train: pd.DataFrame,
    test: pd.DataFrame,
    recommender: Recommender | None = None,
    neighbours: Mapping[str, Pairs] | None = None,
) -> ReplayInputs:
    """The test invoices and what the recommenders read. `recommender`: a fitted champion
    (default: DEFAULT_PARAMS fitted on `train`); `neighbours`: default the champion's own."""
    model = recommender or make_recommender(DEFAULT_PARAMS).fit(train)
    test_baskets = [b for b in baskets(test) if b.steps]
    customers = sorted({b.customer_id for b in test_baskets})
    popular = PopularityRecommender().fit(train).recommend(["(everyone)"], k=TRENDING_POOL)
    return ReplayInputs(
        baskets=test_baskets,
        model=model_lists(model, customers, MODEL_LIST) if customers else {},
        history=purchase_history(train),
        neighbours=neighbours
        if neighbours is not None
        else neighbour_lists(published_neighbours(model)),
        trending=list(zip(popular["product_id"], popular["score"].astype(float), strict=True)),
    )


def capped(inputs: ReplayInputs, max_steps: int | None) -> ReplayInputs:
    """About `max_steps` steps (whole invoices, so up to one invoice more), picked by a hash of
    their order id: the same subset on every run, unrelated to time, customer or basket size."""
    if max_steps is None or inputs.steps <= max_steps:
        return inputs
    kept, steps = [], 0
    for basket in sorted(inputs.baskets, key=lambda b: zlib.crc32(b.order_id.encode())):
        if steps >= max_steps:
            break
        kept.append(basket)
        steps += basket.steps
    kept.sort(key=lambda b: (b.at, b.order_id))
    return dataclasses.replace(inputs, baskets=kept)
