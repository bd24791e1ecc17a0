"""Splitting interactions in time, the way a model meets the future.

A random split would let the model see a customer's later baskets while predicting earlier ones,
which flatters every recommender that remembers what was bought. Cutting the period at one moment
instead trains on the past and tests on what came after, as in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

SplitBy = Literal["span", "interactions"]


@dataclass(frozen=True)
class TimeSplit:
    """Interactions before `cutoff` (train) and from it on (test), and the period they span."""

    train: pd.DataFrame
    test: pd.DataFrame
    cutoff: pd.Timestamp
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def window(self) -> dict[str, str]:
        """The data window as ISO strings (for run tags and reports)."""
        return {
            "start": self.start.isoformat(),
            "cutoff": self.cutoff.isoformat(),
            "end": self.end.isoformat(),
        }


def time_split(
    interactions: pd.DataFrame, train_fraction: float = 0.75, by: SplitBy = "span"
) -> TimeSplit:
    """Train on the past, test on what came after one cutoff moment.

    `by="span"`: the cutoff is `train_fraction` of the way from the first event_time to the
    last (the offline evaluation of a shop's history). `by="interactions"`: the cutoff is the
    time before which `train_fraction` of the interactions fall, so a few late-arriving events
    stamped hours early (a live stream's stragglers) cannot stretch the window and leave the
    training part nearly empty.

    The test part keeps only customers who also appear in train: a recommender cannot
    personalise for a customer it has never seen, and mixing cold starts into the test would
    measure the fallback rather than the model. Train keeps everyone.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1, not {train_fraction}")
    if interactions.empty:
        raise ValueError("cannot split an empty interactions frame")
    times = interactions["event_time"]
    start, end = times.min(), times.max()
    if by == "span":
        cutoff = start + (end - start) * train_fraction
    elif by == "interactions":
        cutoff = times.sort_values(ignore_index=True).iloc[int(len(times) * train_fraction)]
    else:
        raise ValueError(f"by must be 'span' or 'interactions', not {by!r}")
    before = (times < cutoff).to_numpy()
    train = interactions[before]
    test = interactions[~before]
    test = test[test["customer_id"].isin(set(train["customer_id"]))]
    return TimeSplit(
        train=train.reset_index(drop=True),
        test=test.reset_index(drop=True),
        cutoff=cutoff,
        start=start,
        end=end,
    )
