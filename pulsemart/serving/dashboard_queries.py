"""The dashboard's reads: the datamart (`marts.*`) and, once the ML platform writes it,
`governance.model_evaluations`.

Every statement is a constant and every value a bound parameter. The mart reads run in one
read-only repeatable-read transaction, so the charts agree with each other even while dbt
rebuilds a table between two of them. A missing mart raises psycopg's UndefinedTable, which the
caller turns into "not built yet"; a missing evaluations table is an ordinary state (no model
evaluated yet) and reads as None.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

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


def read_marts(conn: psycopg.Connection, top_n: int = TOP_N, dq_days: int = DQ_DAYS) -> MartRows:
    """Every mart read the dashboard needs; raises psycopg.errors.UndefinedTable when a mart
    does not exist yet."""
    limit = {"limit": top_n}
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("set transaction isolation level repeatable read, read only")
        return MartRows(
            totals=cur.execute(SALES_TOTALS).fetchone(),
            by_day=cur.execute(SALES_BY_DAY).fetchall(),
            by_country=cur.execute(SALES_BY_COUNTRY, limit).fetchall(),
            categories=cur.execute(TOP_CATEGORIES, limit).fetchall(),
            products=cur.execute(TOP_PRODUCTS, limit).fetchall(),
            funnel=cur.execute(FUNNEL).fetchone(),
            dq_days=cur.execute(DQ_SCORECARD, {"days": dq_days}).fetchall(),
        )


def read_model_evaluations(conn: psycopg.Connection) -> list[dict] | None:
    """The latest evaluation per model, metric and role; None while the table does not exist."""
    with conn.cursor(row_factory=dict_row) as cur:
        if not cur.execute(MODEL_TABLE_EXISTS).fetchone()["present"]:
            return None
        return cur.execute(MODEL_EVALUATIONS).fetchall()
