"""The dashboard's shaping of query rows into chart series, and its routes before any query."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ml.experiment_stats import mean_interval, wilson
from pulsemart.config import load_settings
from pulsemart.serving import schema
from pulsemart.serving.api import create_app
from pulsemart.serving.dashboard import (
    NO_MODEL,
    bar_chart,
    dq_scorecard_chart,
    funnel_chart,
    model_performance_chart,
    money,
    sales_over_time_chart,
    shape_dashboard,
    top_products_chart,
    totals_chart,
)
from pulsemart.serving.dashboard_experiment import (
    MART_NOT_BUILT,
    NO_EXPERIMENT,
    NO_EXPOSURES,
    experiment_panel,
)
from pulsemart.serving.dashboard_queries import (
    HOUR_SPAN,
    MINUTE_SPAN,
    ExperimentRows,
    MartRows,
    choose_grain,
)
from tests.unit.test_serving_api import NoDatabase


def test_money_rounds_half_up_to_cents_and_reads_none_as_zero():
    assert money(Decimal("10.005")) == 10.01
    assert money(Decimal("-2.345")) == -2.35
    assert money(None) == 0.0
    assert money(3) == 3.0


def test_totals_and_sales_per_day_are_numbers_and_iso_dates_in_date_order():
    totals = totals_chart(
        {
            "net_revenue": Decimal("1234.5678"),
            "gross_revenue": Decimal(1300),
            "cancelled_revenue": Decimal("-65.4322"),
            "units_sold": Decimal(42),
            "first_day": date(2024, 3, 1),
            "last_day": date(2024, 3, 3),
            "days": 2,
        }
    )
    assert totals == {
        "net_revenue": 1234.57,
        "gross_revenue": 1300.0,
        "cancelled_revenue": -65.43,
        "units_sold": 42,
        "first_day": "2024-03-01",
        "last_day": "2024-03-03",
        "days": 2,
    }
    series = sales_over_time_chart(
        [
            {"bucket": date(2024, 3, 3), "net_revenue": Decimal("5.5")},
            {"bucket": date(2024, 3, 1), "net_revenue": Decimal(-1)},
        ],
        "day",
    )
    assert series == {
        "grain": "day",
        "points": [
            {"x": "2024-03-01", "label": "2024-03-01", "y": -1.0},
            {"x": "2024-03-02", "label": "2024-03-02", "y": 0.0},  # no sales: drawn as 0
            {"x": "2024-03-03", "label": "2024-03-03", "y": 5.5},
        ],
    }
    assert sales_over_time_chart([], "minute") == {"grain": "minute", "points": []}


def test_the_grain_is_minute_up_to_two_hours_hour_up_to_three_days_then_day():
    start = datetime(2024, 3, 1, 22, tzinfo=UTC)
    tick = timedelta(microseconds=1)
    assert MINUTE_SPAN == timedelta(hours=2) and HOUR_SPAN == timedelta(days=3)
    assert choose_grain(start, start) == "minute"  # a single order
    assert choose_grain(start, start + timedelta(hours=2)) == "minute"
    assert choose_grain(start, start + timedelta(hours=2) + tick) == "hour"
    assert choose_grain(start, start + timedelta(days=3)) == "hour"
    assert choose_grain(start, start + timedelta(days=3) + tick) == "day"
    assert choose_grain(None, None) == "day"  # nothing sold


def test_minute_and_hour_buckets_are_utc_every_bucket_labelled_with_gaps_as_zero():
    paris = timezone(timedelta(hours=1))  # a session time zone other than UTC
    minutes = sales_over_time_chart(
        [
            {"bucket": datetime(2024, 3, 1, 23, 58, tzinfo=paris), "net_revenue": Decimal(2)},
            {"bucket": datetime(2024, 3, 1, 22, 59, tzinfo=UTC), "net_revenue": Decimal("1.005")},
            {"bucket": datetime(2024, 3, 1, 23, 1, tzinfo=UTC), "net_revenue": Decimal(3)},
        ],
        "minute",
    )
    assert minutes["grain"] == "minute"
    assert [(p["x"], p["label"], p["y"]) for p in minutes["points"]] == [
        ("2024-03-01T22:58:00+00:00", "22:58", 2.0),
        ("2024-03-01T22:59:00+00:00", "22:59", 1.01),
        ("2024-03-01T23:00:00+00:00", "23:00", 0.0),
        ("2024-03-01T23:01:00+00:00", "23:01", 3.0),
    ]
    hours = sales_over_time_chart(
        [
            {"bucket": datetime(2024, 3, 1, 23, tzinfo=UTC), "net_revenue": 1},
            {"bucket": datetime(2024, 3, 2, 1, tzinfo=UTC), "net_revenue": 2},
        ],
        "hour",
    )
    assert [p["label"] for p in hours["points"]] == ["03-01 23:00", "03-02 00:00", "03-02 01:00"]
    assert [p["y"] for p in hours["points"]] == [1.0, 0.0, 2.0]


def test_bars_keep_the_query_order_and_products_carry_id_and_category():
    rows = [
        {"country": "United Kingdom", "net_revenue": Decimal("10.129")},
        {"country": "France", "net_revenue": Decimal(2)},
    ]
    assert bar_chart(rows, "country") == {
        "bars": [{"label": "United Kingdom", "value": 10.13}, {"label": "France", "value": 2.0}]
    }
    products = top_products_chart(
        [
            {
                "product_id": "P1",
                "description": "Red mug",
                "category": "kitchen",
                "net_revenue": Decimal(9),
                "units": Decimal(3),
            },
            {
                "product_id": "P2",
                "description": None,
                "category": None,
                "net_revenue": Decimal(1),
                "units": 1,
            },
        ]
    )["bars"]
    assert products[0] == {
        "label": "Red mug (P1)",
        "value": 9.0,
        "product_id": "P1",
        "category": "kitchen",
        "units": 3,
    }
    assert products[1]["label"] == "(no description) (P2)"


def test_funnel_steps_in_order_with_shares_and_no_steps_without_sessions():
    steps = funnel_chart(
        {
            "sessions": 200,
            "sessions_with_view": 150,
            "sessions_with_search": 60,
            "sessions_with_cart": 30,
            "sessions_with_order": 10,
        }
    )["steps"]
    assert [s["key"] for s in steps] == [
        "sessions",
        "sessions_with_view",
        "sessions_with_search",
        "sessions_with_cart",
        "sessions_with_order",
    ]
    assert [s["value"] for s in steps] == [200, 150, 60, 30, 10]
    assert steps[0]["share_of_sessions"] == 1.0 and steps[-1]["share_of_sessions"] == 0.05
    assert steps[-1]["share_of_previous"] == pytest.approx(0.3333, abs=1e-4)
    assert funnel_chart({"sessions": 0})["steps"] == []


def test_dq_scorecard_stacks_decisions_per_day_and_sums_the_top_rules():
    rows = [
        {
            "decided_date": date(2024, 3, 2),
            "records": 100,
            "accepted": 90,
            "fixed": 6,
            "quarantined": 4,
            "quarantined_then_released": 1,
            "quarantine_rate": Decimal("0.04"),
            "mean_confidence": Decimal("0.9"),
            "top_rules": [
                {"rule_id": "price_positive", "records": 3},
                {"rule_id": "dedupe", "records": 2},
            ],
        },
        {
            "decided_date": date(2024, 3, 1),
            "records": 50,
            "accepted": 50,
            "fixed": 0,
            "quarantined": 0,
            "quarantined_then_released": 0,
            "quarantine_rate": Decimal(0),
            "mean_confidence": None,
            "top_rules": [{"rule_id": "dedupe", "records": 2}],
        },
    ]
    dq = dq_scorecard_chart(rows)
    assert dq["days"] == ["2024-03-01", "2024-03-02"]
    assert dq["series"] == [
        {"name": "accepted", "values": [50, 90]},
        {"name": "fixed", "values": [0, 6]},
        {"name": "quarantined", "values": [0, 4]},
    ]
    assert dq["records"] == 150 and dq["quarantined_then_released"] == 1
    assert dq["quarantine_rate"] == round(4 / 150, 4)
    assert dq["top_rules"] == [
        {"rule_id": "dedupe", "records": 4},
        {"rule_id": "price_positive", "records": 3},
    ]
    assert (
        dq_scorecard_chart([])["top_rules"] == []
        and dq_scorecard_chart([])["quarantine_rate"] == 0.0
    )


def test_model_performance_without_evaluations_says_so():
    for rows in (None, []):
        assert model_performance_chart(rows) == {
            "available": False,
            "message": NO_MODEL,
            "models": [],
        }


def test_model_performance_groups_metrics_by_role_champion_first():
    at = datetime(2024, 3, 5, tzinfo=UTC)
    rows = [
        {
            "model_name": "recs",
            "model_version": "3",
            "role": "challenger",
            "metric": "ndcg@10",
            "value": 0.31,
            "evaluated_at": at,
        },
        {
            "model_name": "recs",
            "model_version": "2",
            "role": "champion",
            "metric": "ndcg@10",
            "value": 0.28,
            "evaluated_at": at,
        },
        {
            "model_name": "recs",
            "model_version": "2",
            "role": "champion",
            "metric": "hit_rate@10",
            "value": 0.5,
            "evaluated_at": at,
        },
        {
            "model_name": "recs",
            "model_version": "pop",
            "role": "baseline",
            "metric": "ndcg@10",
            "value": 0.2,
            "evaluated_at": at,
        },
    ]
    [model] = model_performance_chart(rows)["models"]
    assert model["metrics"] == ["hit_rate@10", "ndcg@10"]
    assert [(s["name"], s["version"], s["values"]) for s in model["series"]] == [
        ("champion", "2", [0.5, 0.28]),
        ("challenger", "3", [None, 0.31]),
        ("baseline", "pop", [None, 0.2]),
    ]
    assert model["evaluated_at"] == "2024-03-05T00:00:00+00:00"
    assert model["served_version"] is None  # nothing deployed
    [served] = model_performance_chart(rows, {"recs": "2", "other": "7"})["models"]
    assert served["served_version"] == "2"


def test_shape_dashboard_names_every_chart():
    marts = MartRows(
        totals={},
        grain="day",
        over_time=[],
        by_country=[],
        categories=[],
        products=[],
        funnel={},
        dq_days=[],
    )
    shaped = shape_dashboard(marts, None)
    assert shaped["available"] is True
    assert set(shaped) >= {
        "totals",
        "sales_over_time",
        "sales_by_country",
        "top_products",
        "top_categories",
        "funnel",
        "dq_scorecard",
        "model_performance",
        "experiment",
    }
    assert shaped["experiment"]["message"] == NO_EXPERIMENT


STARTED = datetime(2024, 3, 1, 22, tzinfo=UTC)


def experiment_row(**changes) -> dict:
    row = {
        "experiment_id": 7,
        "model_name": "pulsemart-recommender",
        "champion_version": "3",
        "shadow": False,
        "status": "running",
        "started_at": STARTED,
        "started_by": "test",
        "ended_at": None,
        "ended_by": None,
        "end_reason": None,
    }
    return row | changes


CHALLENGER = {"variant": "challenger", "model_version": "4", "share": 0.3, "low": 0.0, "high": 0.3}


def mart_day(day: int, variant: str, exposures, clicks, purchases, revenue, revenue_sq) -> dict:
    return {
        "exposure_date": date(2024, 3, day),
        "variant": variant,
        "model_version": {"champion": "3", "challenger": "4"}.get(variant, "9"),
        "exposures": exposures,
        "clicks": clicks,
        "purchases": purchases,
        "revenue": revenue,
        "revenue_sq": revenue_sq,
    }


def test_experiment_intervals_come_from_the_days_summed_per_variant():
    days = [
        mart_day(1, "challenger", 40, 10, 2, Decimal("30.5"), Decimal("600.25")),
        mart_day(1, "champion", 100, 10, 5, Decimal(50), Decimal(900)),
        mart_day(2, "challenger", 60, 2, 1, Decimal("9.5"), Decimal("90.25")),
        mart_day(2, "champion", 100, 10, 3, Decimal(0), Decimal(0)),
    ]
    panel = experiment_panel(ExperimentRows(experiment_row(), [CHALLENGER], days))
    assert panel["available"] is True and panel["message"] is None
    heading = panel["experiment"]
    assert heading["experiment_id"] == 7 and heading["status"] == "running"
    assert heading["started_at"] == "2024-03-01T22:00:00+00:00"
    assert heading["shares"] == [
        {"variant": "champion", "model_version": "3", "share": pytest.approx(0.7)},
        {"variant": "challenger", "model_version": "4", "share": 0.3},
    ]
    champion, challenger = panel["variants"]  # the champion first, whatever the mart's order
    assert (champion["variant"], champion["exposures"], champion["clicks"]) == ("champion", 200, 20)
    assert champion["ctr"]["estimate"] == 0.1
    # 20 clicks in 200 exposures: Wilson's 95% interval, not the mean of the two days' intervals.
    assert champion["ctr"]["low"] == pytest.approx(0.0657, abs=1e-4)
    assert champion["ctr"]["high"] == pytest.approx(0.1494, abs=1e-4)
    assert champion["conversion"] == vars(wilson(8, 200))
    assert champion["revenue_per_exposure"] == vars(mean_interval(50.0, 900.0, 200))
    assert (challenger["exposures"], challenger["clicks"], challenger["purchases"]) == (100, 12, 3)
    assert challenger["revenue"] == 40.0 and challenger["share"] == 0.3
    assert challenger["ctr"] == vars(wilson(12, 100))
    assert challenger["revenue_per_exposure"] == vars(mean_interval(40.0, 690.5, 100))
    assert challenger["revenue_per_exposure"]["estimate"] == 0.4
    assert (challenger["first_day"], challenger["last_day"]) == ("2024-03-01", "2024-03-02")
    schema.ExperimentPanel.model_validate(panel)


def test_an_experiment_panel_says_why_it_has_no_figures():
    assert experiment_panel(ExperimentRows(None, [], None)) == {
        "available": False,
        "message": NO_EXPERIMENT,
        "experiment": None,
        "variants": [],
    }
    stopped = experiment_row(status="stopped", ended_at=STARTED + timedelta(days=1))
    not_built = experiment_panel(ExperimentRows(stopped, [CHALLENGER], None))
    assert not_built["available"] is False and not_built["message"] == MART_NOT_BUILT
    assert not_built["experiment"]["status"] == "stopped"  # the heading still shows
    empty = experiment_panel(ExperimentRows(stopped, [CHALLENGER], []))
    assert empty["message"] == NO_EXPOSURES.format(experiment_id=7) and empty["variants"] == []
    assert empty["experiment"]["ended_at"] == "2024-03-02T22:00:00+00:00"


def test_a_shadow_variant_and_a_variant_the_experiment_does_not_name_still_show():
    shadow = {"variant": "shadow", "model_version": "4", "share": 0.2, "low": 0.0, "high": 0.2}
    days = [
        mart_day(1, "stray", 5, 1, 0, 0, 0),
        mart_day(1, "shadow", 10, 0, 0, 0, 0),
        mart_day(1, "champion", 50, 5, 1, 10, 100),
        mart_day(2, "champion", 0, 0, 0, 0, 0),
    ]
    panel = experiment_panel(ExperimentRows(experiment_row(shadow=True), [shadow], days))
    assert [a["variant"] for a in panel["experiment"]["shares"]] == ["champion", "shadow"]
    assert panel["experiment"]["shares"][0]["share"] == 1.0  # a shadow shows the champion only
    assert [v["variant"] for v in panel["variants"]] == ["champion", "shadow", "stray"]
    stray = panel["variants"][2]
    assert stray["share"] is None and stray["model_version"] == "9"
    assert panel["variants"][1]["ctr"]["estimate"] == 0.0


def test_a_count_above_the_exposures_shows_its_rate_without_an_interval():
    days = [mart_day(1, "champion", 10, 12, 1, 0, 0)]
    [champion] = experiment_panel(ExperimentRows(experiment_row(), [], days))["variants"]
    assert champion["ctr"] == {"estimate": 1.2, "low": None, "high": None}


def test_the_whole_payload_keeps_the_openapi_description():
    marts = MartRows(
        totals={"net_revenue": 1, "first_day": date(2024, 3, 1), "days": 1},
        grain="minute",
        over_time=[{"bucket": STARTED, "net_revenue": 1}],
        by_country=[{"country": "France", "net_revenue": 1}],
        categories=[],
        products=[{"product_id": "P1", "description": None, "net_revenue": 1, "units": 2}],
        funnel={"sessions": 3, "sessions_with_view": 2},
        dq_days=[],
    )
    days = [mart_day(1, "champion", 10, 1, 1, 5, 25)]
    shaped = shape_dashboard(
        marts, None, None, ExperimentRows(experiment_row(), [CHALLENGER], days)
    )
    shaped["generated_at"] = "2024-03-01T22:00:00+00:00"
    schema.DashboardData.model_validate(shaped)
    schema.DashboardData.model_validate(
        {"available": False, "message": "not built", "generated_at": shaped["generated_at"]}
    )


@pytest.fixture
def client(tmp_path):
    settings = load_settings({"PULSEMART_HOME": str(tmp_path), "PULSEMART_API_KEY": "s3cret"})
    return TestClient(create_app(settings, pool=NoDatabase()))


def test_the_page_and_its_script_need_no_key_and_load_nothing_from_outside(client):
    page = client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for asset in ("dashboard.js", "dashboard.css"):
        assert client.get(f"/dashboard/static/{asset}").status_code == 200
    static = Path(__file__).parents[2] / "pulsemart" / "serving" / "static"
    for source in static.iterdir():
        assert "http://" not in source.read_text().replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in source.read_text()


def test_the_data_needs_the_key(client):
    assert client.get("/dashboard/data").status_code == 401
    assert client.get("/dashboard/data", headers={"X-API-Key": "guess"}).status_code == 403


def test_the_docs_site_says_how_to_generate_it_then_serves_it(client, tmp_path):
    missing = client.get("/datamart/docs/")
    assert missing.status_code == 404 and "pulsemart datamart docs" in missing.text
    site = tmp_path / "dbt_docs"
    site.mkdir()
    (site / "index.html").write_text("<html>dbt docs</html>")
    (site / "manifest.json").write_text("{}")
    index = client.get("/datamart/docs/")
    assert index.status_code == 200 and "dbt docs" in index.text
    assert client.get("/datamart/docs/manifest.json").json() == {}
    (tmp_path / "outside.txt").write_text("not part of the site")
    assert client.get("/datamart/docs/..%2foutside.txt").status_code == 404
