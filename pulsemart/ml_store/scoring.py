"""Batch scoring into `serving.recommendations` (with the version's item neighbours in
`serving.item_neighbours`) and `serving.propensity_scores`, and which version
`serving.model_deployments` says the API serves.

Rows are keyed by model version and kept for the last KEEP_VERSIONS versions scored, so a
rollback to any of them only moves the deployment row. A recommender version's neighbours are
written in the transaction that writes its recommendations and pruned with them, so the API
never serves one version's scores with another's neighbours. Each customer gets
SCORED_PER_CUSTOMER products that were available when scored; the API filters again at read
time for products that sold out since. The propensity model scores each customer once, on
their activity up to the end of the data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import psycopg
from psycopg import sql

from ml.names import PROPENSITY, RECOMMENDER
from ml.propensity import build_propensity_dataset, predict_propensity

SCORED_PER_CUSTOMER = 20
# Over-fetch so that dropping products unavailable at scoring time still leaves k; capped at
# a multiple of k so a large sold-out list cannot blow up the rows scored per customer.
FETCH_FACTOR = 2
BLOCK = 10_000  # customers per predict call: memory stays flat however many are scored
KEEP_VERSIONS = 5

Recommend = Callable[[Sequence[str], int], pd.DataFrame]  # (customer keys, k) -> recs frame
COPY_SQL = (
    "copy serving.recommendations (model_name, model_version, customer_key, product_id, "
    "rank, score) from stdin"
)
PROPENSITY_COPY_SQL = (
    "copy serving.propensity_scores (model_name, model_version, customer_key, score) from stdin"
)
NEIGHBOURS_COPY_SQL = (
    "copy serving.item_neighbours (model_name, model_version, product_id, rank, neighbour_id, "
    "score) from stdin"
)
SCORE_TABLES = {
    RECOMMENDER: "recommendations",
    PROPENSITY: "propensity_scores",
}  # in schema serving


def rank_available(recs: pd.DataFrame, unavailable: set[str], k: int) -> pd.DataFrame:
    """`recs` (customer_id, product_id, rank, score) without unavailable products, re-ranked
    1..k per customer in their original order."""
    kept = recs[~recs["product_id"].astype(str).isin(unavailable)]
    kept = kept.sort_values(["customer_id", "rank"], kind="stable")
    kept = kept.assign(rank=kept.groupby("customer_id", sort=False).cumcount() + 1)
    return kept[kept["rank"] <= k].reset_index(drop=True)


def unavailable_products(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("select product_id from serving.product_state where available is false")
    return {row[0] for row in rows}


def write_recommendations(
    conn: psycopg.Connection,
    model_name: str,
    version: str,
    recommend: Recommend,
    customers: Sequence[str],
    k: int = SCORED_PER_CUSTOMER,
    block: int = BLOCK,
) -> int:
    """Replace a version's recommendations for `customers`; returns the rows written.

    Runs in the caller's transaction: readers keep seeing the previous rows until it commits.
    """
    unavailable = unavailable_products(conn)
    fetch = k + min(len(unavailable), (FETCH_FACTOR - 1) * k)
    conn.execute(
        "delete from serving.recommendations where model_name = %s and model_version = %s",
        (model_name, str(version)),
    )
    written = 0
    with conn.cursor() as cur:
        for start in range(0, len(customers), block):
            recs = rank_available(
                recommend(customers[start : start + block], fetch), unavailable, k
            )
            with cur.copy(COPY_SQL) as copy:
                for row in recs.itertuples(index=False):
                    copy.write_row(
                        (
                            model_name,
                            str(version),
                            row.customer_id,
                            row.product_id,
                            int(row.rank),
                            float(row.score),
                        )
                    )
            written += len(recs)
    return written


def write_neighbours(
    conn: psycopg.Connection, model_name: str, version: str, neighbours: pd.DataFrame
) -> int:
    """Replace a version's item neighbours with `neighbours` (ml.neighbours.NEIGHBOUR_COLUMNS);
    returns the rows written. Runs in the caller's transaction."""
    conn.execute(
        "delete from serving.item_neighbours where model_name = %s and model_version = %s",
        (model_name, str(version)),
    )
    with conn.cursor() as cur, cur.copy(NEIGHBOURS_COPY_SQL) as copy:
        for row in neighbours.itertuples(index=False):
            copy.write_row(
                (
                    model_name,
                    str(version),
                    str(row.product_id),
                    int(row.rank),
                    str(row.neighbour_id),
                    float(row.score),
                )
            )
    return len(neighbours)


def propensity_now(model, interactions: pd.DataFrame, train_cutoff: pd.Timestamp) -> pd.Series:
    """P(purchase) per customer key on their activity up to the end of `interactions`, over a
    feature window as long as the model was trained on (from the first interaction to
    `train_cutoff`), so frequency-like features mean what they meant in training."""
    times = interactions["event_time"]
    end = times.max() + pd.Timedelta(1, "ns")
    window_days = (pd.Timestamp(train_cutoff) - times.min()) / pd.Timedelta(days=1)
    features = build_propensity_dataset(
        interactions, end, label_days=0, feature_days=max(window_days, 1.0)
    ).features
    return predict_propensity(model, features)


def write_propensity(
    conn: psycopg.Connection, model_name: str, version: str, scores: pd.Series
) -> int:
    """Replace a version's scores with `scores` (customer key -> probability); returns the rows
    written. Runs in the caller's transaction."""
    conn.execute(
        "delete from serving.propensity_scores where model_name = %s and model_version = %s",
        (model_name, str(version)),
    )
    with conn.cursor() as cur, cur.copy(PROPENSITY_COPY_SQL) as copy:
        for customer_key, score in scores.items():
            copy.write_row((model_name, str(version), str(customer_key), float(score)))
    return len(scores)


def _table(model_name: str) -> sql.Identifier:
    return sql.Identifier("serving", SCORE_TABLES[model_name])


def has_scores(conn: psycopg.Connection, model_name: str, version: str) -> bool:
    """Whether `version` of `model_name` has rows in its score table (a recommender: and in
    serving.item_neighbours, so a version scored before neighbours existed is scored again)."""
    tables = [_table(model_name)]
    if model_name == RECOMMENDER:
        tables.append(sql.Identifier("serving", "item_neighbours"))
    query = sql.SQL("select 1 from {} where model_name = %s and model_version = %s limit 1")
    return all(
        conn.execute(query.format(table), (model_name, str(version))).fetchone() is not None
        for table in tables
    )


def deployed_version(conn: psycopg.Connection, model_name: str) -> str | None:
    row = conn.execute(
        "select model_version from serving.model_deployments where model_name = %s", (model_name,)
    ).fetchone()
    return None if row is None else row[0]


def set_deployment(conn: psycopg.Connection, model_name: str, version: str, by: str) -> str | None:
    """Serve `version` from now on (in the caller's transaction); returns the version before."""
    previous = deployed_version(conn, model_name)
    if previous != str(version):
        conn.execute(
            "insert into serving.model_deployments (model_name, model_version, deployed_by) "
            "values (%s, %s, %s) on conflict (model_name) do update set model_version = "
            "excluded.model_version, deployed_at = now(), deployed_by = excluded.deployed_by",
            (model_name, str(version), by),
        )
    return previous


def prune(
    conn: psycopg.Connection, model_name: str, keep: set[str], keep_versions: int = KEEP_VERSIONS
) -> int:
    """Delete the scores of versions other than `keep` and the `keep_versions` most recently
    scored (a recommender's neighbours: of every version whose recommendations are gone);
    returns the score rows deleted."""
    deleted = conn.execute(
        sql.SQL(
            """
        delete from {table} r
        where r.model_name = %(name)s and r.model_version <> all(%(keep)s)
          and r.model_version not in (
              select model_version from {table} where model_name = %(name)s
              group by model_version order by max(scored_at) desc limit %(n)s)
        """
        ).format(table=_table(model_name)),
        {"name": model_name, "keep": sorted(keep), "n": keep_versions},
    ).rowcount
    if model_name == RECOMMENDER:
        # The versions whose recommendations survived decide, so both tables keep one set.
        conn.execute(
            """
            delete from serving.item_neighbours n
            where n.model_name = %(name)s and n.model_version <> all(%(keep)s)
              and not exists (select 1 from serving.recommendations r
                              where r.model_name = n.model_name
                                and r.model_version = n.model_version)
            """,
            {"name": model_name, "keep": sorted(keep)},
        )
    return deleted
