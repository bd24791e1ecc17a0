"""Session replay: does a recommendation follow the basket as the shopper fills it?

For each test-period invoice the items are revealed one at a time, in file order; after each
one the recommender is asked for the next 10, scored against the invoice's items not revealed
yet: HR@10 (at least one of them among the 10) and NDCG@10 (all of them relevant). A step is
one such question; an invoice of n distinct products makes n - 1 steps (the last item leaves
nothing to predict). A product repeated on an invoice is revealed once, at its first line.
Figures are averaged over steps, so every question counts once.

Three recommenders see the same steps (inputs from ml.session_inputs):

- `batch_only`: the champion's stored top list for the customer, what the API served before
  sessions existed, through `ml.blend.blend` with only the model source;
- `session_aware`: `ml.blend.blend` as the API calls it: the same list, the revealed items as
  in-session carts at the invoice time, the customer's train-period purchases as earlier
  touches (bounded as the serving fold bounds them), the champion's neighbours (ml.neighbours)
  and the popularity list as trending;
- `popularity`: the most-bought products, the same list for everyone.

Pure: no file, no database; the caller loads and splits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from ml.blend import BlendWeights, Touch, blend
from ml.session_inputs import (
    HISTORY_MAX_AGE,
    Basket,
    Progress,
    ReplayInputs,
    capped,
    history_at,
    prepare,
)
from ml.split import time_split

K = 10
NAMES = ("batch_only", "session_aware", "popularity")
PROGRESS_EVERY = 5000  # steps between progress reports
TRAIN_FRACTION = 0.75  # the split `pulsemart model evaluate` measures everything on

Ranker = Callable[[Basket, int], list[str]]  # (basket, items revealed) -> products, best first


def rankers(
    inputs: ReplayInputs, weights: BlendWeights, max_age: timedelta | None = HISTORY_MAX_AGE
) -> dict[str, Ranker]:
    """The three recommenders of the replay (NAMES), each a function of (basket, revealed)."""
    only_model = BlendWeights(model=1.0, session=0.0, history=0.0, trending=0.0)
    popular = [p for p, _ in inputs.trending][:K]

    stored: dict[str, list[str]] = {}  # the batch list depends on the customer alone

    def batch_only(basket: Basket, revealed: int) -> list[str]:
        if basket.customer_id not in stored:
            ranked = blend(
                model=inputs.model.get(basket.customer_id, ()),
                touches=(),
                neighbours={},
                trending=(),
                now=basket.at,
                weights=only_model,
                k=K,
            )
            stored[basket.customer_id] = [item.product_id for item in ranked]
        return stored[basket.customer_id]

    def session_aware(basket: Basket, revealed: int) -> list[str]:
        touches = [Touch(p, "cart", basket.at, True) for p in basket.products[:revealed]]
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

    def popularity(basket: Basket, revealed: int) -> list[str]:
        return popular

    return {"batch_only": batch_only, "session_aware": session_aware, "popularity": popularity}


def step_scores(ranked: Sequence[str], remaining: set[str], k: int = K) -> tuple[float, float]:
    """(hit, NDCG) of one ranked list against the items still to come."""
    gains = [1.0 / np.log2(r + 2) for r, p in enumerate(ranked[:k]) if p in remaining]
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(remaining), k)))
    return (1.0 if gains else 0.0), (float(sum(gains) / ideal) if ideal else 0.0)


def replay(
    inputs: ReplayInputs, ranking: Mapping[str, Ranker], progress: Progress | None = None
) -> list[dict]:
    """One row per recommender: name, hr_at_10, ndcg_at_10, steps (averaged over steps)."""
    total = inputs.steps
    sums = {name: [0.0, 0.0] for name in ranking}
    done = 0
    for basket in inputs.baskets:
        for revealed in range(1, len(basket.products)):
            remaining = set(basket.products[revealed:])
            for name, rank in ranking.items():
                hit, gain = step_scores(rank(basket, revealed), remaining)
                sums[name][0] += hit
                sums[name][1] += gain
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
    if progress is not None:
        progress(done, total)
    return [
        {
            "name": name,
            "hr_at_10": hits / done if done else 0.0,
            "ndcg_at_10": gains / done if done else 0.0,
            "steps": done,
        }
        for name, (hits, gains) in sums.items()
    ]


def session_replay(
    interactions: pd.DataFrame,
    weights: BlendWeights | None = None,
    max_steps: int | None = None,
    progress: Progress | None = None,
) -> list[dict]:
    """The three recommenders on the test invoices of a 75/25 time split of `interactions`
    (ml.split, as `pulsemart model evaluate`), the default recommender fitted on the past and
    the blend with `weights` (default: BlendWeights())."""
    split = time_split(interactions, TRAIN_FRACTION)
    inputs = capped(prepare(split.train, split.test), max_steps)
    return replay(inputs, rankers(inputs, weights or BlendWeights()), progress)


def format_rows(rows: Sequence[dict]) -> str:
    """The replay's rows as an aligned table, with session_aware's HR@10 ratio to the others."""
    by_name = {row["name"]: row for row in rows}
    lines = [f"  {'recommender':<14}{'hr_at_10':>10}{'ndcg_at_10':>12}{'steps':>8}"]
    for row in rows:
        lines.append(
            f"  {row['name']:<14}{row['hr_at_10']:>10.4f}{row['ndcg_at_10']:>12.4f}"
            f"{row['steps']:>8}"
        )
    session = by_name.get("session_aware")
    for other in ("batch_only", "popularity"):
        base = by_name.get(other)
        if session and base and base["hr_at_10"] > 0:
            ratio = session["hr_at_10"] / base["hr_at_10"]
            lines.append(f"  HR@10 ratio session_aware / {other}: {ratio:.2f}")
    return "\n".join(lines)
