"""What the session replay says about choices the weight grid does not make (docs/ml.md).

Each ablation changes one thing against the chosen weights, on the same validation split of
the train period the grid used (ml.session_tuning), so none of them looks at the test period:

- `in-basket exclusion only`: the session lends nothing; the blend only drops what is in the
  basket from the stored list. How much of session_aware's gain is that alone?
- `the model's similarity as neighbours`: the champion's own similarity (bought by the same
  customers) instead of the sequential rules it publishes (ml.sequences);
- `basket co-occurrence neighbours`: neighbours from invoices (bought on the same invoice, in
  any order) instead of the sequential rules;
- `no session order`: every product of the session lends alike (session_decay 1);
- `paced reveal`: the revealed items stamped `PACE` apart, the last at the invoice time, with a
  short session half-life. Online Retail has one time per invoice, so the replay proper cannot
  tell the last item revealed from the first; this says what recency within a session would be
  worth if it could. The pace is an assumption, so its figures choose no default.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.blend import BlendWeights, Touch, blend
from ml.interactions import purchases
from ml.neighbours import (
    NEIGHBOURS_PER_PRODUCT,
    cooccurrence,
    from_similarity,
    item_neighbours,
    neighbour_lists,
)
from ml.recommenders import Recommender
from ml.session_inputs import HISTORY_MAX_AGE, Basket, Pairs, Progress, ReplayInputs, history_at
from ml.session_replay import K, Ranker, rankers, replay

PACE = timedelta(seconds=60)  # one item a minute: an assumption, see the module's docstring
PACED = ((60.0, 0.1), (60.0, 0.3), (300.0, 0.1), (300.0, 0.3))  # (half_life_s, session)


def basket_neighbours(train: pd.DataFrame, n: int = NEIGHBOURS_PER_PRODUCT) -> dict[str, Pairs]:
    """Shrunk cosine of products over invoices (each invoice-product pair once)."""
    lines = purchases(train).drop_duplicates(["order_id", "product_id"])
    orders = pd.Index(lines["order_id"].astype(str).unique())
    products = pd.Index(lines["product_id"].unique())
    matrix = sp.csr_matrix(
        (
            np.ones(len(lines), dtype=np.float32),
            (
                orders.get_indexer(lines["order_id"].astype(str)),
                products.get_indexer(lines["product_id"]),
            ),
        ),
        shape=(len(orders), len(products)),
    )
    return neighbour_lists(from_similarity(cooccurrence(matrix), products, n))


def paced_session(
    inputs: ReplayInputs,
    weights: BlendWeights,
    pace: timedelta = PACE,
    max_age: timedelta | None = HISTORY_MAX_AGE,
) -> Ranker:
    """session_aware with the revealed items `pace` apart, the last at the invoice time."""

    def rank(basket: Basket, revealed: int) -> list[str]:
        touches = [
            Touch(p, "cart", basket.at - (revealed - 1 - i) * pace, True)
            for i, p in enumerate(basket.products[:revealed])
        ]
        touches += history_at(inputs.history.get(basket.customer_id, ()), basket.at, max_age)
        ranked = blend(
            model=inputs.model.get(basket.customer_id, ()),
            touches=touches,
            neighbours=inputs.neighbours,
            trending=inputs.trending,
            now=basket.at,
            weights=weights,
            k=K,
        )
        return [item.product_id for item in ranked]

    return rank


def ablations(
    inputs: ReplayInputs,
    inner_train: pd.DataFrame,
    chosen: BlendWeights,
    progress: Progress | None = None,
    champion: Recommender | None = None,
) -> list[dict]:
    """One row per variant (`variant`, hr_at_10, ndcg_at_10, steps) on the validation inputs."""
    variants: dict[str, tuple[ReplayInputs, Ranker]] = {}
    plain = rankers(inputs, chosen)
    variants["batch_only"] = (inputs, plain["batch_only"])
    variants["popularity"] = (inputs, plain["popularity"])
    variants["session_aware, chosen weights"] = (inputs, plain["session_aware"])
    silent = dataclasses.replace(chosen, session=0.0, history=0.0)
    variants["in-basket exclusion only"] = (inputs, rankers(inputs, silent)["session_aware"])
    if champion is not None:
        own = dataclasses.replace(inputs, neighbours=neighbour_lists(item_neighbours(champion)))
        variants["the model's similarity as neighbours"] = (
            own,
            rankers(own, chosen)["session_aware"],
        )
    unordered = dataclasses.replace(chosen, session_decay=1.0)
    variants["no session order"] = (inputs, rankers(inputs, unordered)["session_aware"])
    basket = dataclasses.replace(inputs, neighbours=basket_neighbours(inner_train))
    variants["basket co-occurrence neighbours"] = (
        basket,
        rankers(basket, chosen)["session_aware"],
    )
    for half_life, session in PACED:
        paced = dataclasses.replace(chosen, half_life_s=half_life, session=session)
        name = f"paced reveal, half-life {half_life:g} s, session {session:g}"
        variants[name] = (inputs, paced_session(inputs, paced))
    rows = []
    for done, (name, (data, rank)) in enumerate(variants.items(), start=1):
        [row] = replay(data, {name: rank})
        rows.append({"variant": name, **{k: row[k] for k in ("hr_at_10", "ndcg_at_10", "steps")}})
        if progress is not None:
            progress(done, len(variants))
    return rows
