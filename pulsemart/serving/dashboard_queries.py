"""The dashboard's reads: the datamart (`marts.*`), `governance.model_evaluations` once the ML
platform writes it, and the versions the API serves (`serving.model_deployments`).

Every statement is a constant and every value a bound parameter. The mart reads run in one
read-only repeatable-read transaction, so the charts agree with each other even while dbt
rebuilds a table between two of them. A missing mart raises psycopg's UndefinedTable, which the
caller turns into "not built yet"; a missing evaluations table is an ordinary state (no model
evaluated yet) and reads as None.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from pulsemart.store.rows import one_row_async

TOP_N = 10  # bars in the country, product and category charts
DQ_DAYS = 60  # days of the data-quality scorecard shown

SALES_TOTALS = """
select coalesce(sum(net_revenue), 0) as net_revenue,
       coalesce(sum(gross_revenue), 0) as gross_revenue,
       coalesce(sum(cancelled_revenue), 0) as cancelled_revenue,
       coalesce(sum(units_sold), 0) as units_sold,
       min(order_date) as first_day,
       max(order_date) as last_day
from marts.agg_sales_daily
"""

SALES_BY_DAY = """
select order_date, sum(net_revenue) as net_revenue, sum(gross_revenue) as gross_revenue
from marts.agg_sales_daily
group by order_date
order by order_date
"""

SALES_BY_COUNTRY = """
select country, sum(net_revenue) as net_revenue
from marts.agg_sales_daily
group by country
order by net_revenue desc, country
limit %(limit)s
"""

TOP_CATEGORIES = """
select category, sum(net_revenue) as net_revenue
from marts.agg_sales_daily
group by category
order by net_revenue desc, category
limit %(limit)s
"""

# A left join: a line whose product has no current version still counts, under its id.
TOP_PRODUCTS = """
select l.product_id, max(p.description) as description, max(p.category) as category,
       sum(l.line_amount) as net_revenue, sum(l.quantity) as units
from marts.fct_order_lines l
left join marts.dim_product p on p.product_key = l.product_key and p.is_current
group by l.product_id
order by net_revenue desc, l.product_id
limit %(limit)s
"""

FUNNEL = """
select coalesce(sum(sessions), 0) as sessions,
       coalesce(sum(sessions_with_view), 0) as sessions_with_view,
       coalesce(sum(sessions_with_search), 0) as sessions_with_search,
       coalesce(sum(sessions_with_cart), 0) as sessions_with_cart,
       coalesce(sum(sessions_with_order), 0) as sessions_with_order
from marts.agg_funnel_daily
"""

DQ_SCORECARD = """
select decided_date, records, accepted, fixed, quarantined, quarantined_then_released,
       quarantine_rate, mean_confidence, top_rules
from marts.dq_scorecard_daily
order by decided_date desc
limit %(days)s
"""

MODEL_TABLE_EXISTS = "select to_regclass('governance.model_evaluations') is not null as present"

SERVED_MODELS = """
select model_name, model_version, deployed_at, deployed_by
from serving.model_deployments order by model_name
"""

# The latest evaluation of each (model, metric, role).
MODEL_EVALUATIONS = """
select distinct on (model_name, metric, role)
       model_name, model_version, role, metric, value, evaluated_at
from governance.model_evaluations
order by model_name, metric, role, evaluated_at desc
"""


@dataclass(frozen=True)
class MartRows:
    totals: dict
    by_day: list[dict]
    by_country: list[dict]
    categories: list[dict]
    products: list[dict]
    funnel: dict
    dq_days: list[dict]


async def read_marts(conn: AsyncConnection, top_n: int = TOP_N, dq_days: int = DQ_DAYS) -> MartRows:
    """Every mart read the dashboard needs; raises psycopg.errors.UndefinedTable when a mart
    does not exist yet."""
    limit = {"limit": top_n}

    async def rows(statement: str, params: dict | None = None) -> list[dict]:
        await cur.execute(statement, params)
        return await cur.fetchall()

    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("set transaction isolation level repeatable read, read only")
        return MartRows(
            totals=(await rows(SALES_TOTALS))[0],
            by_day=await rows(SALES_BY_DAY),
            by_country=await rows(SALES_BY_COUNTRY, limit),
            categories=await rows(TOP_CATEGORIES, limit),
            products=await rows(TOP_PRODUCTS, limit),
            funnel=(await rows(FUNNEL))[0],
            dq_days=await rows(DQ_SCORECARD, {"days": dq_days}),
        )


async def read_model_evaluations(conn: AsyncConnection) -> list[dict] | None:
    """The latest evaluation per model, metric and role; None while the table does not exist."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(MODEL_TABLE_EXISTS)
        if not (await one_row_async(cur))["present"]:
            return None
        await cur.execute(MODEL_EVALUATIONS)
        return await cur.fetchall()


async def read_served_models(conn: AsyncConnection) -> list[dict]:
    """The version the API serves per model (none before the first deployment)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SERVED_MODELS)
        return await cur.fetchall()
