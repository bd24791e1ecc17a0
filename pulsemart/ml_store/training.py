"""The training data: every interaction of a known customer, from the datamart.

The marts key customers by `governance.keyed_hash(customer id)`, so models learn and score
customer keys, never raw ids; the serving API hashes the id it receives with the same function.
"""

from __future__ import annotations

import pandas as pd
import psycopg

from pulsemart.store.quality import query_frame

# One current row per product (the snapshot keeps one; `distinct on` makes it certain), for
# the category the drift profile compares.
CURRENT_CATEGORY = """
    select distinct on (product_id) product_id, category
    from marts.dim_product where is_current order by product_id, valid_from desc
"""

INTERACTIONS_SQL = f"""
select i.customer_key as customer_id, i.product_id, i.event_time, i.interaction as event_type,
       i.quantity, i.unit_price, i.order_id, i.session_id, p.category
from marts.fct_product_interactions i
left join ({CURRENT_CATEGORY}) p on p.product_id = i.product_id
order by i.event_time, i.interaction_key
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters


class NoTrainingData(RuntimeError):
    """The datamart has no interactions to learn from; the message says what to build."""


def read_interactions(conn: psycopg.Connection) -> pd.DataFrame:
    """The interactions in the canonical columns (ml.interactions), plus `category`.

    Raises NoTrainingData when the mart does not exist yet or is empty.
    """
    try:
        with conn.transaction():  # a missing mart rolls it back, leaving the connection usable
            frame = query_frame(conn, INTERACTIONS_SQL)
    except psycopg.errors.UndefinedTable as exc:
        raise NoTrainingData(
            "marts.fct_product_interactions does not exist: build the datamart "
            "first (job datamart_build, or `pulsemart datamart build`)"
        ) from exc
    if frame.empty:
        raise NoTrainingData(
            "marts.fct_product_interactions is empty: no known customer has "
            "viewed, carted or bought anything yet"
        )
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    for column in ("quantity", "unit_price"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def known_customers(conn: psycopg.Connection) -> list[str]:
    """Every customer key in the interactions mart: who batch scoring ranks products for."""
    rows = conn.execute(
        "select distinct customer_key from marts.fct_product_interactions order by 1"
    ).fetchall()
    return [row[0] for row in rows]
