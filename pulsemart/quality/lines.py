"""Order lines held back: the lines of quarantined order events, values as found.

Backs the `quality.quarantined_lines` view: with `EngineResult.order_lines` it accounts for
every line of every order exactly once.
"""

from __future__ import annotations

import json

import pandas as pd

COLUMNS = [
    "topic",
    "partition",
    "offset",
    "event_id",
    "line_id",
    "product_id",
    "quantity",
    "unit_price",
    "reasons",
]


def quarantined_lines(quarantine: pd.DataFrame) -> pd.DataFrame:
    """One row per order line of each quarantined record whose payload still parses."""
    rows = []
    for q in quarantine.itertuples(index=False):
        if q.payload_encoding != "utf-8" or q.event_type not in ("order_placed", "order_cancelled"):
            continue
        try:
            event = json.loads(q.payload)
        except ValueError:
            continue
        lines = event.get("lines") if isinstance(event, dict) else None
        if isinstance(lines, str):
            try:
                lines = json.loads(lines)
            except ValueError:
                lines = None
        if not isinstance(lines, list):
            continue
        for line in lines:
            if isinstance(line, dict):
                line_id = line.get("line_id")
                rows.append(
                    (
                        q.topic,
                        q.partition,
                        q.offset,
                        q.event_id,
                        None if line_id is None else str(line_id),
                        line.get("product_id"),
                        line.get("quantity"),
                        line.get("unit_price"),
                        q.reasons,
                    )
                )
    return pd.DataFrame(rows, columns=COLUMNS)
