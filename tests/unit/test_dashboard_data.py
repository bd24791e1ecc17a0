"""The dashboard's shaping of query rows into chart series, and its routes before any query."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pulsemart.config import load_settings
from pulsemart.serving.api import create_app
from pulsemart.serving.dashboard import (
    NO_MODEL,
    bar_chart,
    dq_scorecard_chart,
    funnel_chart,
    model_performance_chart,
    money,
    sales_by_day_chart,
    shape_dashboard,
    top_products_chart,
    totals_chart,
)
from pulsemart.serving.dashboard_queries import MartRows
from tests.unit.test_serving_api import NoDatabase


def test_money_rounds_half_up_to_cents_and_reads_none_as_zero():
    assert money(Decimal("10.005")) == 10.01
    assert money(Decimal("-2.345")) == -2.35
    assert money(None) == 0.0
    assert money(3) == 3.0


def test_totals_and_sales_by_day_are_numbers_and_iso_dates_in_date_order():
    totals = totals_chart(
        {
            "net_revenue": Decimal("1234.5678"),
            "gross_revenue": Decimal(1300),
            "cancelled_revenue": Decimal("-65.4322"),
            "units_sold": Decimal(42),
            "first_day": date(2024, 3, 1),
            "last_day": date(2024, 3, 2),
        }
    )
    assert totals == {
        "net_revenue": 1234.57,
        "gross_revenue": 1300.0,
        "cancelled_revenue": -65.43,
        "units_sold": 42,
        "first_day": "2024-03-01",
        "last_day": "2024-03-02",
    }
    series = sales_by_day_chart(
        [
            {"order_date": date(2024, 3, 2), "net_revenue": Decimal("5.5")},
            {"order_date": date(2024, 3, 1), "net_revenue": Decimal(-1)},
        ]
    )
    assert series == {"points": [{"x": "2024-03-01", "y": -1.0}, {"x": "2024-03-02", "y": 5.5}]}


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
        totals={}, by_day=[], by_country=[], categories=[], products=[], funnel={}, dq_days=[]
    )
    shaped = shape_dashboard(marts, None)
    assert shaped["available"] is True
    assert set(shaped) >= {
        "totals",
        "sales_by_day",
        "sales_by_country",
        "top_products",
        "top_categories",
        "funnel",
        "dq_scorecard",
        "model_performance",
    }


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
