"""Small deterministic interaction frames, built in code, for the ml tests.

A plain module (not conftest) so tests can import the builders by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.interactions import from_frame

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def frame(rows) -> pd.DataFrame:
    """Canonical interactions from (customer, product, day, [event_type, quantity, price])."""
    records = []
    for row in rows:
        customer, product, day, *rest = row
        event_type = rest[0] if len(rest) > 0 else "purchase"
        records.append(
            {
                "customer_id": customer,
                "product_id": product,
                "event_time": T0 + pd.Timedelta(days=day),
                "event_type": event_type,
                "quantity": rest[1] if len(rest) > 1 else 1.0,
                "unit_price": rest[2] if len(rest) > 2 else 2.0,
                "order_id": f"{customer}-{day}" if event_type == "purchase" else None,
            }
        )
    return from_frame(pd.DataFrame(records))


def taste_groups(groups: int = 3, customers: int = 12, products: int = 10, seed: int = 0):
    """Customers in `groups` with disjoint product ranges: train days 0-59, test days 60-89.

    Each customer buys 4 of their group's products in train and 3 others of the group in test,
    so what they buy next is predictable from their group's co-purchases, not from popularity.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        catalog = [f"g{g}p{i}" for i in range(products)]
        for c in range(customers):
            picks = rng.permutation(catalog)
            for day, product in zip(rng.integers(0, 60, 4), picks[:4], strict=True):
                rows.append((f"g{g}c{c}", product, int(day)))
            for day, product in zip(rng.integers(60, 90, 3), picks[4:7], strict=True):
                rows.append((f"g{g}c{c}", product, int(day)))
    return frame(rows)


def loyal_and_occasional(seed=0, customers=300):
    """Half the customers buy every ~10 days, half once in a while: the first kind returns."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        gap = 10 if c % 2 == 0 else 80
        day = int(rng.integers(0, gap))
        while day < 200:
            rows.append(
                (
                    f"c{c}",
                    f"p{rng.integers(0, 20)}",
                    day,
                    "purchase",
                    float(rng.integers(1, 10)),
                    2.0,
                )
            )
            day += int(rng.integers(gap // 2, gap * 3 // 2 + 1))
    return frame(rows)
