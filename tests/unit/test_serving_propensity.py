"""Propensity batch scoring: who is scored, on which window, with the model's probability."""

import numpy as np
import pandas as pd

from pulsemart.ml_store.scoring import propensity_now


class RecencyModel:
    """P(purchase) falls with recency: enough to see which rows and features were scored."""

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + features["recency_days"].to_numpy())
        return np.column_stack([1 - p, p])


def interactions(rows):
    frame = pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type"])
    return frame.assign(
        event_time=pd.to_datetime(frame["event_time"], utc=True),
        product_id="P1",
        quantity=1.0,
        unit_price=2.0,
        order_id=None,
        session_id=None,
    )


def test_customers_active_in_a_window_as_long_as_training_are_scored_at_the_end_of_the_data():
    data = interactions(
        [
            (
                "early",
                "2024-01-01",
                "purchase",
            ),  # first interaction: the training window starts here
            ("recent", "2024-01-20", "purchase"),
            ("recent", "2024-01-30", "view"),
            ("latest", "2024-01-31", "purchase"),
        ]
    )
    # Trained on 10 days of features (Jan 1 - Jan 11): scoring looks at the last 10 days only.
    scores = propensity_now(RecencyModel(), data, pd.Timestamp("2024-01-11", tz="UTC"))
    assert set(scores.index) == {"recent", "latest"}  # "early" did nothing in the window
    assert scores["latest"] > scores["recent"] and all(0 < s <= 1 for s in scores)
    assert np.isclose(scores["recent"], 1 / (1 + 11), atol=0.01)  # bought 11 days before the end
