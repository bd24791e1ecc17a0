"""What the checks on served item neighbours measure: coverage and unknown products.

Read from serving.item_neighbours for the version serving.model_deployments names, against the
products that version was trained on (the registered model's own list), so a check fails on
what the API would actually read, not on what scoring meant to write.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from pulsemart.store.rows import one_row

# A trained product has no neighbours only when its buyers bought nothing else; on the Online
# Retail sample all 3,259 products have some (docs/ml.md). Below this share something is wrong.
MIN_TRAINED_COVERAGE = 0.9
SAMPLES = 5  # unknown rows named in the check's metadata

COUNTS_SQL = """
with trained as (select unnest(%(trained)s::text[]) as product_id)
select
    (select count(*) from serving.item_neighbours
     where model_name = %(name)s and model_version = %(version)s) as neighbour_rows,
    (select count(*) from trained t where exists (
         select 1 from serving.item_neighbours n where n.model_name = %(name)s
         and n.model_version = %(version)s and n.product_id = t.product_id)) as trained_covered,
    (select count(*) from serving.product_state) as catalog,
    (select count(*) from serving.product_state p where exists (
         select 1 from serving.item_neighbours n where n.model_name = %(name)s
         and n.model_version = %(version)s and n.product_id = p.product_id)) as catalog_covered
"""
UNKNOWN_SQL = """
with trained as (select unnest(%(trained)s::text[]) as product_id)
select product_id, neighbour_id from serving.item_neighbours
where model_name = %(name)s and model_version = %(version)s
  and (product_id not in (select product_id from trained)
       or neighbour_id not in (select product_id from trained))
order by product_id, rank
"""


def neighbour_health(
    conn: psycopg.Connection, model_name: str, version: str, trained: Sequence[str]
) -> dict:
    """Coverage of the trained products and of the catalog (serving.product_state) by the
    version's neighbours, and the rows naming a product the version was not trained on."""
    params = {"name": model_name, "version": str(version), "trained": [str(p) for p in trained]}
    rows, covered, catalog, catalog_covered = one_row(conn.execute(COUNTS_SQL, params))
    unknown = conn.execute(UNKNOWN_SQL, params).fetchall()
    return {
        "model_version": str(version),
        "neighbour_rows": rows,
        "trained_products": len(trained),
        "trained_coverage": covered / len(trained) if trained else 0.0,
        "catalog_products": catalog,
        "catalog_coverage": catalog_covered / catalog if catalog else 0.0,
        "unknown_rows": len(unknown),
        "unknown_samples": [f"{p} -> {n}" for p, n in unknown[:SAMPLES]],
    }
