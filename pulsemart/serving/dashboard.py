"""The dashboard at /dashboard and the dbt docs site at /datamart/docs/ on the serving API.

`GET /dashboard` is a static page (no data, served without the key); its script reads the key
from the URL fragment (`/dashboard#key=...`, which browsers never send to a server) and calls
`GET /dashboard/data` with it as `X-API-Key`. That endpoint needs the key like every data route,
and answers `available: false` with a message, never an error, while the datamart is not built.
The charts are drawn as SVG by `static/dashboard.js`: nothing is loaded from outside the API.

The functions named `*_chart` and `shape_dashboard` turn query rows into chart series; they are
pure and unit-tested; the experiment panel's shaping lives in dashboard_experiment.py. See
docs/dashboard.md.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from ml.names import RECOMMENDER
from pulsemart.config import Settings
from pulsemart.datamart.docs import docs_dir
from pulsemart.serving import schema
from pulsemart.serving.dashboard_experiment import experiment_panel
from pulsemart.serving.dashboard_queries import (
    STEP,
    ExperimentRows,
    Grain,
    MartRows,
    read_experiment,
    read_marts,
    read_model_evaluations,
    read_served_models,
)
from pulsemart.serving.encode import json_body

STATIC_DIR = Path(__file__).with_name("static")

# The page may load its own script, style sheet and data and nothing else: no CDN, no font
# service, no inline script that an injected product description could become.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

FUNNEL_STEPS = (
    ("sessions", "Sessions"),
    ("sessions_with_view", "Viewed a product"),
    ("sessions_with_search", "Searched"),
    ("sessions_with_cart", "Carted"),
    ("sessions_with_order", "Ordered"),
)
DQ_SERIES = ("accepted", "fixed", "quarantined")
ROLE_ORDER = ("champion", "challenger", "baseline")
TOP_RULES = 10
# Axis labels per grain, in UTC like the buckets: a minute chart spans two hours at most, an
# hour chart three days.
TIME_LABEL = {"minute": "%H:%M", "hour": "%m-%d %H:00", "day": "%Y-%m-%d"}

NOT_BUILT = (
    "The datamart is not built yet ({detail}). Run `pulsemart datamart build`, or "
    "materialize the datamart assets in Dagster, then reload this page."
)
NO_MODEL = (
    "No model evaluated yet: the ML platform writes governance.model_evaluations "
    "when it evaluates a model."
)


def money(value) -> float:
    """An amount rounded half-up to cents, as the page shows it."""
    if value is None:
        return 0.0
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def number(value) -> float | int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else as_float


def iso(value) -> str | None:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def totals_chart(row: dict) -> dict:
    return {
        "net_revenue": money(row.get("net_revenue")),
        "gross_revenue": money(row.get("gross_revenue")),
        "cancelled_revenue": money(row.get("cancelled_revenue")),
        "units_sold": number(row.get("units_sold")),
        "first_day": iso(row.get("first_day")),
        "last_day": iso(row.get("last_day")),
        "days": number(row.get("days")),
    }


def sales_over_time_chart(rows: list[dict], grain: Grain) -> dict:
    """Net revenue per `grain` bucket (rows: `bucket`, `net_revenue`), every bucket from the
    first sale's to the last's: zero where nothing sold, so that the x axis is time."""
    revenue = {}
    for row in rows:
        bucket = row["bucket"]
        if isinstance(bucket, datetime):  # a timestamptz, in the session's time zone
            bucket = bucket.astimezone(UTC)
        revenue[bucket] = money(row["net_revenue"])
    points = []
    if revenue:
        at, last = min(revenue), max(revenue)
        while at <= last:
            label = at.strftime(TIME_LABEL[grain])
            points.append({"x": at.isoformat(), "label": label, "y": revenue.get(at, 0.0)})
            at += STEP[grain]
    return {"grain": grain, "points": points}


def bar_chart(rows: list[dict], label: str, value: str = "net_revenue") -> dict:
    return {"bars": [{"label": str(r[label]), "value": money(r[value])} for r in rows]}


def top_products_chart(rows: list[dict]) -> dict:
    bars = []
    for r in rows:
        name = r.get("description") or "(no description)"
        bars.append(
            {
                "label": f"{name} ({r['product_id']})",
                "value": money(r["net_revenue"]),
                "product_id": r["product_id"],
                "category": r.get("category"),
                "units": number(r.get("units")),
            }
        )
    return {"bars": bars}


def funnel_chart(row: dict) -> dict:
    sessions = number(row.get("sessions"))
    steps, previous = [], sessions
    for key, label in FUNNEL_STEPS:
        value = number(row.get(key))
        steps.append(
            {
                "key": key,
                "label": label,
                "value": value,
                "share_of_sessions": round(value / sessions, 4) if sessions else 0.0,
                "share_of_previous": round(value / previous, 4) if previous else 0.0,
            }
        )
        previous = value
    return {"steps": steps if sessions else []}


def dq_scorecard_chart(rows: list[dict], top_rules: int = TOP_RULES) -> dict:
    """Stacked decisions per day, and the rules that fired most (summed over each day's top 5,
    which is what the mart keeps)."""
    days = sorted(rows, key=lambda r: r["decided_date"])
    rules: Counter[str] = Counter()
    for day in days:
        for rule in day.get("top_rules") or []:
            rules[str(rule["rule_id"])] += int(number(rule.get("records")))
    records = sum(number(d["records"]) for d in days)
    quarantined = sum(number(d["quarantined"]) for d in days)
    ranked = sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))[:top_rules]
    return {
        "days": [iso(d["decided_date"]) for d in days],
        "series": [{"name": name, "values": [number(d[name]) for d in days]} for name in DQ_SERIES],
        "records": records,
        "quarantined_then_released": sum(number(d["quarantined_then_released"]) for d in days),
        "quarantine_rate": round(quarantined / records, 4) if records else 0.0,
        "top_rules": [{"rule_id": rule, "records": count} for rule, count in ranked],
    }


def _role_rank(role: str) -> tuple:
    return (ROLE_ORDER.index(role), "") if role in ROLE_ORDER else (len(ROLE_ORDER), role)


def model_performance_chart(rows: list[dict] | None, served: dict[str, str] | None = None) -> dict:
    """Per model: the latest value of each metric, one series per role (champion first), and
    the version the API serves (`served`: model name -> version; None when none is deployed)."""
    if not rows:
        return {"available": False, "message": NO_MODEL, "models": []}
    models = []
    for name in sorted({r["model_name"] for r in rows}):
        mine = [r for r in rows if r["model_name"] == name]
        metrics = sorted({r["metric"] for r in mine})
        series = []
        for role in sorted({r["role"] for r in mine}, key=_role_rank):
            by_metric = {r["metric"]: r for r in mine if r["role"] == role}
            latest = max(by_metric.values(), key=lambda r: r["evaluated_at"])
            values = [by_metric[m]["value"] if m in by_metric else None for m in metrics]
            series.append(
                {
                    "name": role,
                    "version": latest["model_version"],
                    "values": [None if v is None else float(v) for v in values],
                }
            )
        models.append(
            {
                "model_name": name,
                "metrics": metrics,
                "series": series,
                "served_version": (served or {}).get(name),
                "evaluated_at": iso(max(r["evaluated_at"] for r in mine)),
            }
        )
    return {"available": True, "message": None, "models": models}


def shape_dashboard(
    marts: MartRows,
    evaluations: list[dict] | None,
    served: dict[str, str] | None = None,
    experiment: ExperimentRows | None = None,
) -> dict:
    return {
        "available": True,
        "message": None,
        "totals": totals_chart(marts.totals),
        "sales_over_time": sales_over_time_chart(marts.over_time, marts.grain),
        "sales_by_country": bar_chart(marts.by_country, "country"),
        "top_products": top_products_chart(marts.products),
        "top_categories": bar_chart(marts.categories, "category"),
        "funnel": funnel_chart(marts.funnel),
        "dq_scorecard": dq_scorecard_chart(marts.dq_days),
        "model_performance": model_performance_chart(evaluations, served),
        "experiment": experiment_panel(experiment or ExperimentRows(None, [], None)),
    }


def not_built(detail: str) -> dict:
    return {"available": False, "message": NOT_BUILT.format(detail=detail)}


async def dashboard_data(conn: psycopg.AsyncConnection) -> dict:
    try:
        marts = await read_marts(conn)
    except psycopg.errors.UndefinedTable as exc:
        return not_built(exc.diag.message_primary or "a mart table is missing")
    try:
        evaluations, unreadable = await read_model_evaluations(conn), None
    except psycopg.errors.UndefinedColumn as exc:  # a table of another shape than this reader's
        evaluations, unreadable = None, exc.diag.message_primary
    served = {row["model_name"]: row["model_version"] for row in await read_served_models(conn)}
    experiment = await read_experiment(conn, RECOMMENDER)
    shaped = shape_dashboard(marts, evaluations, served, experiment)
    if unreadable:
        shaped["model_performance"]["message"] = (
            f"governance.model_evaluations cannot be read: {unreadable}"
        )
    return shaped


class DocsSite:
    """The published dbt docs under `directory`, looked up on every request: the folder may
    appear (or be swapped by `pulsemart datamart docs`) while the API runs."""

    MISSING = (
        "The dbt docs site is not generated yet: run `pulsemart datamart docs`, "
        "then reload this page.\n"
    )

    def __init__(self, directory: Path):
        self.directory = directory
        self.files = StaticFiles(directory=directory, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not (self.directory / "index.html").is_file():
            await PlainTextResponse(self.MISSING, status_code=404)(scope, receive, send)
            return
        await self.files(scope, receive, send)


def install_dashboard(app: FastAPI, settings: Settings, secured: list, errors: dict) -> None:
    """Add /dashboard, /dashboard/data, /dashboard/static/ and /datamart/docs/ to `app`
    (`errors`: the error responses /dashboard/data documents)."""
    router = APIRouter()

    @router.get("/dashboard", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "dashboard.html", headers=PAGE_HEADERS)

    @router.get(
        "/dashboard/data",
        tags=["dashboard"],
        dependencies=secured,
        response_model=schema.DashboardData,
        responses=errors,
    )
    async def data(request: Request) -> Response:
        """Every chart's series, or `available: false` and a message if no datamart yet."""
        async with request.app.state.pool.connection() as conn:
            shaped = await dashboard_data(conn)
        shaped["generated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return Response(
            json_body(shaped), media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.mount("/datamart/docs", DocsSite(docs_dir(settings)), name="datamart-docs")
