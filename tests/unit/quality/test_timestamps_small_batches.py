"""Small batches classify timestamps by a plain loop; it must agree with the column-wise path
value for value."""

import random

import pandas as pd

from pulsemart.quality import timestamps


def values(n: int, seed: int) -> list:
    rng = random.Random(seed)
    pool = [
        "2024-03-01T10:00:00.000Z",
        " 2024-03-01T10:00:00+02:00 ",
        "2024-03-01T10:00:00.123456Z",
        "12/1/10 8:26",
        "12/01/2010 08:26:11",
        "2024-03-01 10:00:00",
        "2024-03-01T10:00:00",
        "1709287200000",
        "170928720000",
        "99999999999999",
        "1709287200000.5",
        1709287200000,
        1709287200000.0,
        1709287200000.5,
        12.0,
        float("nan"),
        None,
        True,
        "",
        "yesterday",
        "2024-13-45T99:99:99Z",
        ["2024-03-01T10:00:00Z"],
        {"t": 1},
        "1e12",
        "٠١٢٣٤٥٦٧٨٩١٢",
    ]
    return [rng.choice(pool) for _ in range(n)]


def test_the_small_batch_path_agrees_with_the_column_path():
    for seed in range(20):
        column = pd.Series(values(200, seed), dtype=object)
        expected = timestamps.classify(column)  # more than SMALL values: column-wise
        small = pd.concat(
            [timestamps.classify(column.iloc[i : i + 10]) for i in range(0, len(column), 10)]
        )
        # No format is None on one path and may be NaN on the other; callers compare names.
        assert (
            small.where(small.notna(), None).tolist()
            == expected.where(expected.notna(), None).tolist()
        )
        assert small.index.equals(expected.index)
