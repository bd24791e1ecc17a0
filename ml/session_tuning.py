"""Choosing the blend's weights with the session replay, without letting the test period vote.

The grid is scored on a validation split of the train period: its first 75% (in time) trains
the default recommender, its neighbours and the popularity list, its last 25% supplies the
invoices replayed. The best point by validation HR@10 (NDCG@10 breaks ties) becomes the
defaults in ml.blend.BlendWeights; only then is the test period replayed, once, with them.

The model weight is the unit (1.0): the blend scales each source to [0, 1], so only ratios
matter. Online Retail holds purchases only, and the replay reveals an invoice's items as carts
at the invoice time, so what the grid can measure is how much a cart in the session lends
(session x cart) and a past purchase lends (history x purchase); views and the session
half-life leave no trace in it (ml.session_ablations measures what those would be worth).

    python -m pulsemart.ml_store.retail --sessions-grid PATH
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ml.blend import BlendWeights
from ml.recommenders import DEFAULT_PARAMS, make_recommender
from ml.session_inputs import Progress, ReplayInputs, prepare
from ml.session_replay import TRAIN_FRACTION, rankers, replay
from ml.split import TimeSplit, time_split

# No zero weight: a source must still fill the list when the others are empty (an anonymous
# shopper has no model list, a customer the last scoring missed has only history), which the
# replay cannot see, since every customer it replays has a stored list.
GRID: Mapping[str, Sequence[float]] = {
    "session": (0.1, 0.3, 0.5, 1.0),
    "session_decay": (0.35, 0.5, 0.7),
    "history": (0.003, 0.03),
    "trending": (0.05,),
}
VALIDATION_FRACTION = 0.75  # of the train period, as ml.split cuts the whole file


def validation_split(train: pd.DataFrame) -> TimeSplit:
    """The train period alone, cut like the file: its first 75% against its last 25%."""
    return time_split(train, VALIDATION_FRACTION)


def grid_points(
    grid: Mapping[str, Sequence[float]] = GRID, base: BlendWeights | None = None
) -> list[BlendWeights]:
    """Every combination of the grid's values, the other fields as in `base`."""
    base = base or BlendWeights()
    names = list(grid)
    points = []
    for values in itertools.product(*(grid[name] for name in names)):
        changes: dict[str, Any] = dict(zip(names, values, strict=True))
        points.append(dataclasses.replace(base, **changes))
    return points


def grid_search(
    inputs: ReplayInputs, points: Sequence[BlendWeights], progress: Progress | None = None
) -> list[dict]:
    """session_aware's validation HR@10 and NDCG@10 at each point, best first."""
    rows = []
    for done, weights in enumerate(points, start=1):
        [row] = replay(inputs, {"session_aware": rankers(inputs, weights)["session_aware"]})
        rows.append({**dataclasses.asdict(weights), **_figures(row)})
        if progress is not None:
            progress(done, len(points))
    return sorted(rows, key=lambda r: (-r["hr_at_10"], -r["ndcg_at_10"]))


def best_weights(rows: Sequence[dict]) -> BlendWeights:
    """The weights of the best grid row (rows as grid_search returns them)."""
    fields = {f.name for f in dataclasses.fields(BlendWeights)}
    values = {key: value for key, value in rows[0].items() if key in fields}
    values["exclude_kinds"] = tuple(values.get("exclude_kinds", ()))
    return BlendWeights(**values)


def tune(
    interactions: pd.DataFrame,
    grid: Mapping[str, Sequence[float]] = GRID,
    progress: Progress | None = None,
) -> dict:
    """The grid on validation and its best weights; the ablations (ml.session_ablations) on
    the same validation inputs; then the three recommenders on test with the chosen weights."""
    from ml.session_ablations import ablations

    split = time_split(interactions, TRAIN_FRACTION)
    inner = validation_split(split.train)
    champion = make_recommender(DEFAULT_PARAMS).fit(inner.train)
    validation = prepare(inner.train, inner.test, champion)
    rows = grid_search(validation, grid_points(grid), progress)
    chosen = best_weights(rows)
    test_inputs = prepare(split.train, split.test)
    return {
        "grid": rows,
        "chosen": dataclasses.asdict(chosen),
        "ablations": ablations(validation, inner.train, chosen, progress, champion),
        "test": replay(test_inputs, rankers(test_inputs, chosen)),
    }


def to_markdown(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """Rows as a markdown table of `columns` (floats to 4 places)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _figures(row: dict) -> dict:
    return {key: row[key] for key in ("hr_at_10", "ndcg_at_10", "steps")}
