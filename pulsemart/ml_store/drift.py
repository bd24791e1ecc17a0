"""What the drift sensor observes: recent interactions against the serving model's training
profile, and how often customers bought what they were recommended.

"Recent" is measured in event time, not wall-clock time: interactions after the serving
version's training cutoff (data it never learned from) and within `window_days` of the newest
interaction. A replayed or simulated stream from another year is then judged like a live one.
Reads at most `limit` recent interactions, so a tick stays cheap however large the mart grows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import psycopg

from ml.drift import hit_rate
from pulsemart.ml_store.profile import feature_profile, psi_by_feature
from pulsemart.ml_store.records import latest_metric, load_profile
from pulsemart.ml_store.scoring import deployed_version
from pulsemart.ml_store.training import CURRENT_CATEGORY
from pulsemart.store.quality import query_frame
from pulsemart.store.rows import one_row

K = 10  # the hit rate is measured on the top 10, like the holdout's precision_at_10
WINDOW = """
    i.event_time >= %(since)s
    and i.event_time > (select max(event_time) from marts.fct_product_interactions)
                       - %(days)s * interval '1 day'
"""
RECENT_SQL = f"""
select i.product_id, i.interaction as event_type, i.unit_price, i.quantity, i.order_id, p.category
from marts.fct_product_interactions i
left join ({CURRENT_CATEGORY}) p on p.product_id = i.product_id
where {WINDOW}
order by i.event_time desc
limit %(limit)s
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters
PURCHASES_SQL = f"""
select i.customer_key as customer_id, i.product_id
from marts.fct_product_interactions i
where i.interaction = 'purchase' and {WINDOW}
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters
SERVED_SQL = f"""
select r.customer_key as customer_id, r.product_id
from serving.recommendations r
where r.model_name = %(name)s and r.model_version = %(version)s and r.rank <= %(k)s
  and r.customer_key in (
      select i.customer_key from marts.fct_product_interactions i
      where i.interaction = 'purchase' and {WINDOW})
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters


class NothingToCompare(RuntimeError):
    """No serving model, or no profile of it: the message is the sensor's skip reason."""


@dataclass(frozen=True)
class DriftObservation:
    model_name: str
    version: str
    since: str  # the serving version's training cutoff
    rows: int  # recent interactions compared
    newest: str | None = None  # event time of the newest interaction in the mart
    psi: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # recent values behind each PSI
    hit_rate: float | None = None  # live precision@K among customers who bought since
    expected_hit_rate: float | None = None  # the version's holdout precision@K
    buyers: int = 0


def observe(
    conn: psycopg.Connection, model_name: str, window_days: float, limit: int = 50_000
) -> DriftObservation:
    """What the drift sensor compares, read in one transaction that ends before it returns (no
    snapshot is held between ticks)."""
    with conn.transaction():
        return _observe(conn, model_name, window_days, limit)


def _observe(
    conn: psycopg.Connection, model_name: str, window_days: float, limit: int
) -> DriftObservation:
    version = deployed_version(conn, model_name)
    if version is None:
        raise NothingToCompare(f"no {model_name} version is deployed yet")
    stored = load_profile(conn, model_name, version)
    if stored is None:
        raise NothingToCompare(f"{model_name} v{version} has no training profile to compare with")
    window, reference = stored
    params = {
        "since": pd.Timestamp(window["cutoff"]).to_pydatetime(),
        "days": window_days,
        "limit": limit,
        "name": model_name,
        "version": version,
        "k": K,
    }
    recent = query_frame(conn, RECENT_SQL, params)
    for column in ("unit_price", "quantity"):
        recent[column] = pd.to_numeric(recent[column], errors="coerce")
    current = feature_profile(recent, top_products=reference["top_products"])
    served = query_frame(conn, SERVED_SQL, params)
    bought = query_frame(conn, PURCHASES_SQL, params)
    buyers = int(served["customer_id"].nunique()) if len(served) else 0
    expected = latest_metric(conn, model_name, version, f"precision_at_{K}")
    newest = one_row(conn.execute("select max(event_time) from marts.fct_product_interactions"))[0]
    return DriftObservation(
        model_name=model_name,
        version=version,
        since=str(window["cutoff"]),
        rows=len(recent),
        newest=newest.isoformat() if newest else None,
        psi=psi_by_feature(reference, current) if len(recent) else {},
        counts={name: len(values) for name, values in current["features"].items()},
        hit_rate=hit_rate(served, bought) if buyers else None,
        expected_hit_rate=expected,
        buyers=buyers,
    )
