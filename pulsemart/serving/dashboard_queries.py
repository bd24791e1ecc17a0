"""The dashboard's reads: the datamart (`marts.*`), `governance.model_evaluations` once the ML
platform writes it, the versions the API serves (`serving.model_deployments`) and the
recommender's experiment (`serving.experiments`, `marts.agg_experiment_daily`).

Every statement is a constant and every value a bound parameter. The mart reads run in one
read-only repeatable-read transaction, so the charts agree with each other even while dbt
rebuilds a table between two of them. A missing mart raises psycopg's UndefinedTable, which the
caller turns into "not built yet"; a missing evaluations table or experiment mart is an ordinary
state (no model evaluated yet, no experiment readout built yet) and reads as None.

Sales over time are read at the grain `choose_grain` picks from the span of the order lines:
per minute up to two hours, per hour up to three days, per day beyond. The daily mart holds
days only, so finer buckets come from the order lines' timestamps (`fct_order_lines.ordered_at`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from pulsemart.store.rows import one_row_async

TOP_N = 10  # bars in the country, product and category charts
DQ_DAYS = 60  # days of the data-quality scorecard shown

Grain = Literal["minute", "hour", "day"]
# The longest span drawn per minute, then per hour: at most 121 minutes or 73 hours, enough
# points to show a shape and few enough to read. A demo's first hour is drawn per minute.
MINUTE_SPAN = timedelta(hours=2)
HOUR_SPAN = timedelta(days=3)
FINE_GRAINS: dict[Grain, timedelta] = {"minute": MINUTE_SPAN, "hour": HOUR_SPAN}
STEP: dict[Grain, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}

SALES_TOTALS = """
select coalesce(sum(net_revenue), 0) as net_revenue,
       coalesce(sum(gross_revenue), 0) as gross_revenue,
       coalesce(sum(cancelled_revenue), 0) as cancelled_revenue,
       coalesce(sum(units_sold), 0) as units_sold,
       min(order_date) as first_day,
       max(order_date) as last_day,
       count(distinct order_date) as days
from marts.agg_sales_daily
"""

SALES_SPAN = (
    "select min(ordered_at) as first_at, max(ordered_at) as last_at from marts.fct_order_lines"
)

SALES_BY_DAY = """
select order_date as bucket, sum(net_revenue) as net_revenue
from marts.agg_sales_daily
group by order_date
order by order_date
"""

# Cut in UTC whatever the session's time zone, as the daily marts cut their days. The span read
# in the same snapshot bounds the buckets (121 or 73 at most); the limit only says so.
SALES_BY_BUCKET = """
select date_trunc(%(grain)s, ordered_at, 'UTC') as bucket, sum(line_amount) as net_revenue
from marts.fct_order_lines
group by 1
order by 1
limit %(limit)s
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


EXPERIMENT = """
select experiment_id, model_name, champion_version, shadow, status, started_at, started_by,
       ended_at, ended_by, end_reason
from serving.experiments
where model_name = %(model_name)s
order by (status = 'running') desc, experiment_id desc
limit 1
"""

EXPERIMENT_VARIANTS = """
select variant, model_version, share, low, high
from serving.experiment_variants
where experiment_id = %(experiment_id)s
order by low, variant
"""

EXPERIMENT_MART_EXISTS = "select to_regclass('marts.agg_experiment_daily') is not null as present"

# One row per day and variant: the dashboard adds them up per variant (dashboard_experiment.py).
EXPERIMENT_DAYS = """
select exposure_date, variant, model_version, exposures, clicks, purchases, revenue, revenue_sq
from marts.agg_experiment_daily
where experiment_id = %(experiment_id)s
order by exposure_date, variant
"""


def choose_grain(first: datetime | None, last: datetime | None) -> Grain:
    """The grain of a time chart spanning `first` to `last`: minute up to MINUTE_SPAN, hour up
    to HOUR_SPAN, day beyond (and when there is nothing to draw)."""
    if first is None or last is None:
        return "day"
    for grain, longest in FINE_GRAINS.items():
        if last - first <= longest:
            return grain
    return "day"


@dataclass(frozen=True)
class MartRows:
    totals: dict
    grain: Grain
    over_time: list[dict]  # `bucket` (a date, or a timestamp at minute and hour grain), net revenue
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
        span = (await rows(SALES_SPAN))[0]
        grain = choose_grain(span["first_at"], span["last_at"])
        if grain == "day":
            over_time = await rows(SALES_BY_DAY)
        else:
            # Both ends' buckets count: 2 hours hold 121 minutes.
            bounded = {"grain": grain, "limit": FINE_GRAINS[grain] // STEP[grain] + 1}
            over_time = await rows(SALES_BY_BUCKET, bounded)
        return MartRows(
            totals=(await rows(SALES_TOTALS))[0],
            grain=grain,
            over_time=over_time,
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


@dataclass(frozen=True)
class ExperimentRows:
    experiment: dict | None  # the serving.experiments row; None: no experiment on the model yet
    variants: list[dict]  # its serving.experiment_variants rows
    days: list[dict] | None  # its rows of marts.agg_experiment_daily; None: the mart is not built


async def read_experiment(conn: AsyncConnection, model_name: str) -> ExperimentRows:
    """`model_name`'s running experiment, else the one that started last, with its variants
    and its exposures and outcomes per day and variant from marts.agg_experiment_daily."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("set transaction isolation level repeatable read, read only")
        await cur.execute(EXPERIMENT, {"model_name": model_name})
        experiment = await cur.fetchone()
        if experiment is None:
            return ExperimentRows(None, [], None)
        chosen = {"experiment_id": experiment["experiment_id"]}
        await cur.execute(EXPERIMENT_VARIANTS, chosen)
        variants = await cur.fetchall()
        await cur.execute(EXPERIMENT_MART_EXISTS)
        if not (await one_row_async(cur))["present"]:
            return ExperimentRows(experiment, variants, None)
        await cur.execute(EXPERIMENT_DAYS, chosen)
        return ExperimentRows(experiment, variants, await cur.fetchall())
