"""Batch scoring into `serving.recommendations`, and which version `serving.model_deployments`
says the API serves.

Rows are keyed by model version and kept for the last KEEP_VERSIONS versions scored, so a
rollback to any of them only moves the deployment row. Each customer gets
SCORED_PER_CUSTOMER products that were available when scored; the API filters again at read
time for products that sold out since.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import psycopg

SCORED_PER_CUSTOMER = 20
# Over-fetch so that dropping products unavailable at scoring time still leaves k; capped at
# a multiple of k so a large sold-out list cannot blow up the rows scored per customer.
FETCH_FACTOR = 2
BLOCK = 10_000  # customers per predict call: memory stays flat however many are scored
KEEP_VERSIONS = 5

Recommend = Callable[[Sequence[str], int], pd.DataFrame]  # (customer keys, k) -> recs frame
COPY_SQL = ("copy serving.recommendations (model_name, model_version, customer_key, product_id, "
            "rank, score) from stdin")


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


def write_recommendations(conn: psycopg.Connection, model_name: str, version: str,
                          recommend: Recommend, customers: Sequence[str],
                          k: int = SCORED_PER_CUSTOMER, block: int = BLOCK) -> int:
    """Replace a version's recommendations for `customers`; returns the rows written.

    Runs in the caller's transaction: readers keep seeing the previous rows until it commits.
    """
    unavailable = unavailable_products(conn)
    fetch = k + min(len(unavailable), (FETCH_FACTOR - 1) * k)
    conn.execute("delete from serving.recommendations where model_name = %s and model_version = %s",
                 (model_name, str(version)))
    written = 0
    with conn.cursor() as cur:
        for start in range(0, len(customers), block):
            recs = rank_available(recommend(customers[start:start + block], fetch), unavailable, k)
            with cur.copy(COPY_SQL) as copy:
                for row in recs.itertuples(index=False):
                    copy.write_row((model_name, str(version), row.customer_id, row.product_id,
                                    int(row.rank), float(row.score)))
            written += len(recs)
    return written


def has_recommendations(conn: psycopg.Connection, model_name: str, version: str) -> bool:
    row = conn.execute("select 1 from serving.recommendations where model_name = %s "
                       "and model_version = %s limit 1", (model_name, str(version))).fetchone()
    return row is not None


def deployed_version(conn: psycopg.Connection, model_name: str) -> str | None:
    row = conn.execute("select model_version from serving.model_deployments where model_name = %s",
                       (model_name,)).fetchone()
    return None if row is None else row[0]


def set_deployment(conn: psycopg.Connection, model_name: str, version: str, by: str) -> str | None:
    """Serve `version` from now on (in the caller's transaction); returns the version before."""
    previous = deployed_version(conn, model_name)
    if previous != str(version):
        conn.execute(
            "insert into serving.model_deployments (model_name, model_version, deployed_by) "
            "values (%s, %s, %s) on conflict (model_name) do update set model_version = "
            "excluded.model_version, deployed_at = now(), deployed_by = excluded.deployed_by",
            (model_name, str(version), by))
    return previous


def prune(conn: psycopg.Connection, model_name: str, keep: set[str],
          keep_versions: int = KEEP_VERSIONS) -> int:
    """Delete the recommendations of versions other than `keep` and the `keep_versions` most
    recently scored; returns the rows deleted."""
    return conn.execute(
        """
        delete from serving.recommendations r
        where r.model_name = %(name)s and r.model_version <> all(%(keep)s)
          and r.model_version not in (
              select model_version from serving.recommendations where model_name = %(name)s
              group by model_version order by max(scored_at) desc limit %(n)s)
        """, {"name": model_name, "keep": sorted(keep), "n": keep_versions}).rowcount
