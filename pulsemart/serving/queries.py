"""Reads over the serving tables: product search, trending, propensity, live metrics.

Every statement is a constant; filters are bound parameters (a filter left out is NULL and
matches everything), and the sort order is chosen from a fixed set, never taken from input.
The functions take an async connection from the API's pool; each is one round trip, but for
the live metrics (four statements, never cached).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from ml.names import PROPENSITY
from pulsemart.store.rows import one_row_async

# A search item: a product's serving row.
PRODUCT_COLUMNS = (
    "product_id",
    "description",
    "category",
    "unit_price",
    "currency",
    "available",
    "stock",
    "customization_options",
    "customizable",
    "views",
    "carts",
    "purchases",
    "popularity",
    "updated_event_time",
)
_PRODUCT_COLUMNS = ", ".join(f"p.{c}" for c in PRODUCT_COLUMNS)

SORTS = {
    "price": sql.SQL("p.unit_price asc, p.product_id"),
    "-price": sql.SQL("p.unit_price desc, p.product_id"),
    "popularity": sql.SQL("p.popularity desc, p.product_id"),
}

_SEARCH = sql.SQL("""
select {columns}
from serving.product_state p
where p.unit_price is not null
  and (%(q)s::text is null or p.description ilike %(pattern)s or p.product_id = %(q)s)
  and (%(category)s::text is null or lower(p.category) = lower(%(category)s))
  and (%(price_min)s::float8 is null or p.unit_price >= %(price_min)s)
  and (%(price_max)s::float8 is null or p.unit_price <= %(price_max)s)
  and (%(available)s::boolean is null or coalesce(p.available, true) = %(available)s)
  and (%(customizable)s::boolean is null or p.customizable = %(customizable)s)
order by {order}
limit %(limit)s
""")
SEARCH = {
    name: _SEARCH.format(columns=sql.SQL(_PRODUCT_COLUMNS), order=order)
    for name, order in SORTS.items()
}


@dataclass(frozen=True)
class SearchFilters:
    q: str | None = None
    category: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    available: bool | None = None
    customizable: bool | None = None
    sort: str = "popularity"
    limit: int = 20


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_params(filters: SearchFilters) -> dict:
    """The parameters of `SEARCH[filters.sort]`."""
    return {**filters.__dict__, "pattern": _like_pattern(filters.q) if filters.q else None}


async def search_products(conn: AsyncConnection, filters: SearchFilters) -> list[dict]:
    """Products matching every filter given. A price range with price_min above price_max
    matches nothing (an empty result, not an error)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SEARCH[filters.sort], search_params(filters))
        return await cur.fetchall()


# Trending for a customer (the blend's last resort, see personal.py). Candidates: products
# with a known price that are not out of stock. Base score: the last hour's trending score. A
# known customer's score is multiplied by their affinity to the product's category (1 + 2 x its
# share of their weight) and by how close the price is to what they usually look at
# (1 / (1 + |ln(price / their average price)|)); that factor also orders products of equal
# score (those with no activity in the hour among them), then the product id. Nothing here
# reads a live counter: the list changes only with serving.trending, the customer's profile
# and the catalog, which is what lets the response cache keep it across folds (cache.py).
#
# Every factor is positive, so a product active in the hour outranks every product that is
# not: the statement ranks the hour's products (`hot`, read through serving.trending's key)
# and reads the rest of the catalog (`cold`) only when fewer than k are hot. The count is a
# one-time filter: with k hot products, the catalog's scan is never started.
TRENDING_FOR = """
with profile as (
    select category_affinity as affinity, avg_price,
           (select sum(value::float8) from jsonb_each_text(category_affinity)) as total
    from serving.customer_profile where customer_id = %(customer_id)s
), hot as materialized (
    select p.product_id, t.score as trending_score, p.category, p.unit_price
    from serving.trending t
    join serving.product_state p on p.product_id = t.product_id
    where t."window" = '1h' and t.score > 0 and p.unit_price > 0 and coalesce(p.available, true)
), cold as (
    select p.product_id, 0 as trending_score, p.category, p.unit_price
    from serving.product_state p
    where (select count(*) from hot) < %(k)s
      and p.unit_price > 0 and coalesce(p.available, true)
      and not exists (select 1 from hot h where h.product_id = p.product_id)
), factored as (
    select c.product_id, c.trending_score,
           case when %(personal)s then
               (1 + 2 * coalesce((pr.affinity->>c.category)::float8 / nullif(pr.total, 0), 0))
               * coalesce(1 / (1 + abs(ln(c.unit_price / nullif(pr.avg_price, 0)))), 1)
           else 1 end as factor
    from (select * from hot union all select * from cold) c
    left join profile pr on true
)
select product_id, trending_score * factor as score, trending_score
from factored order by score desc, factor desc, product_id limit %(k)s
"""


METRICS = {
    # Records landed in the last minute (ingest.batches is one row per landed batch: cheaper
    # than scanning raw.events by ingested_at, and the same figure).
    "events_per_second": """
        select coalesce(sum(records), 0)::float8 / 60 from ingest.batches
        where finished_at > now() - interval '1 minute'
    """,
    "partitions": """
        select o.topic, o."partition", o.next_offset as landed_offset,
               coalesce(p.next_offset, 0) as decided_offset,
               greatest(o.next_offset - coalesce(p.next_offset, 0), 0) as decision_lag,
               o.updated_at as last_landed_at,
               extract(epoch from now() - o.updated_at)::float8 as seconds_since_landed
        from ingest.offsets o
        left join quality.progress p on p.topic = o.topic and p."partition" = o."partition"
        order by o.topic, o."partition"
    """,
    "quality_last_5m": """
        select coalesce(sum(records_in), 0) as records, coalesce(sum(accepted), 0) as accepted,
               coalesce(sum(fixed), 0) as fixed, coalesce(sum(quarantined), 0) as quarantined,
               coalesce(sum(held), 0) as held, count(*) as batches
        from quality.batches where decided_at > now() - interval '5 minutes'
    """,
    "freshness": """
        select max_event_time, quality_batch_id as last_quality_batch_folded,
               extract(epoch from now() - max_event_time)::float8 as event_time_lag_seconds,
               extract(epoch from now() - updated_at)::float8 as seconds_since_refresh,
               (select count(*) from quality.batches b
                where b.quality_batch_id > s.quality_batch_id) as quality_batches_waiting
        from serving.progress s
    """,
}


async def _one(cur, statement: str) -> dict | None:
    await cur.execute(statement)
    return await cur.fetchone()


async def realtime_metrics(conn: AsyncConnection) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(METRICS["events_per_second"])
        (events_per_second,) = (await one_row_async(cur)).values()
        await cur.execute(METRICS["partitions"])
        partitions = await cur.fetchall()
        decisions = await _one(cur, METRICS["quality_last_5m"])
        freshness = await _one(cur, METRICS["freshness"]) or {
            "max_event_time": None,
            "last_quality_batch_folded": None,
            "event_time_lag_seconds": None,
            "seconds_since_refresh": None,
            "quality_batches_waiting": None,
        }
    return {
        "events_per_second": events_per_second,
        "partitions": partitions,
        "quality_last_5m": decisions,
        "freshness": freshness,
    }


# Whether the serving tables know the customer, and the deployed propensity version's batch
# score for them (serving.model_deployments names the version, so a promotion or rollback is
# served on the next request): one row, the score's columns null when there is none.
CUSTOMER_PROPENSITY = """
select exists (select 1 from serving.customer_profile where customer_id = %(customer_id)s)
           as known,
       s.score, s.model_name, s.model_version, s.scored_at
from (select 1) one
left join (
    select s.score, s.model_name, s.model_version, s.scored_at
    from serving.model_deployments d
    join serving.propensity_scores s
      on s.model_name = d.model_name and s.model_version = d.model_version
    where d.model_name = %(model)s and s.customer_key = governance.keyed_hash(%(customer_id)s)
) s on true
"""


async def customer_propensity(conn: AsyncConnection, customer_id: str) -> dict:
    """Whether the serving tables know the customer, and the deployed propensity model's score
    for them: None when no version is deployed or it did not score them."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(CUSTOMER_PROPENSITY, {"model": PROPENSITY, "customer_id": customer_id})
        row = await one_row_async(cur)
    known = row.pop("known")
    return {
        "customer_id": customer_id,
        "known": known,
        "propensity": row if row["model_name"] is not None else None,
    }
