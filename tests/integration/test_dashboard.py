"""The dashboard end to end: simulated events → ingest → quality → dbt datamart → the API under
uvicorn → headless Chromium, whose rendered DOM must show every chart with the database's
numbers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import ClassVar

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.datamart.pii import apply_pii_key
from pulsemart.datamart.run import run_dbt
from pulsemart.serving.api import create_app
from pulsemart.serving.dashboard import NO_MODEL
from pulsemart.stream.simulator import generate
from tests.integration.helpers import free_port, produce_simulated

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOPICS = ["shop.catalog", "shop.events"]
KEY = "test-key"
CHROMIUM = "/usr/bin/chromium"
# Flags this closed network needs: no background fetches, no QUIC, no first-run work.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
]
CHARTS = (
    "sales-by-day",
    "sales-by-country",
    "funnel",
    "top-products",
    "top-categories",
    "dq-scorecard",
    "dq-top-rules",
    "model-performance",
)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("PULSEMART_SKIP_BROWSER_TESTS") == "1":
            pytest.skip("PULSEMART_SKIP_BROWSER_TESTS=1 and no Chromium")
        pytest.fail("install Chromium: `make test` installs it (Debian package chromium)")
    return CHROMIUM


class Node:
    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.children, self.parts = tag, attrs, [], []

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, **attrs) -> list[Node]:
        return [
            n
            for n in self.walk()
            if all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def count(self, tag: str) -> int:
        return sum(1 for n in self.walk() if n.tag == tag)

    @property
    def text(self) -> str:
        return "".join(self.parts) + "".join(c.text for c in self.children)


class DomParser(HTMLParser):
    """The dumped DOM as a tree (Chromium writes an end tag for every non-void element)."""

    VOID: ClassVar[set[str]] = {
        "meta",
        "link",
        "br",
        "img",
        "input",
        "hr",
        "source",
        "wbr",
        "area",
        "base",
        "col",
    }

    def __init__(self):
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


def render(browser: str, url: str) -> Node:
    profile = tempfile.mkdtemp(prefix="pulsemart-chromium-")
    try:
        result = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert result.returncode == 0 and "<body" in result.stdout, result.stderr[-2000:]
    parser = DomParser()
    parser.feed(result.stdout)
    return parser.root


@pytest.fixture
def server(fresh_stream):
    """The serving API under uvicorn on a free port, in a thread of this process."""
    port = free_port()
    app = create_app(fresh_stream.model_copy(update={"api_key": SecretStr(KEY)}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def scalar(db, query: str):
    return db.execute(query).fetchone()[0]


def expected_points(db) -> dict:
    """What each chart should draw, from the marts themselves."""
    return {
        "sales-by-day": scalar(db, "select count(distinct order_date) from marts.agg_sales_daily"),
        "sales-by-country": min(
            10, scalar(db, "select count(distinct country) from marts.agg_sales_daily")
        ),
        "funnel": 5,
        "top-products": min(
            10, scalar(db, "select count(distinct product_id) from marts.fct_order_lines")
        ),
        "top-categories": min(
            10, scalar(db, "select count(distinct category) from marts.agg_sales_daily")
        ),
        "dq-scorecard": scalar(
            db,
            "select coalesce(sum((accepted > 0)::int + (fixed > 0)::int "
            "+ (quarantined > 0)::int), 0) from marts.dq_scorecard_daily",
        ),
        "dq-top-rules": min(
            10,
            scalar(
                db,
                "select count(distinct r->>'rule_id') from marts.dq_scorecard_daily, "
                "jsonb_array_elements(top_rules) r",
            ),
        ),
    }


def charts(dom: Node) -> dict[str, Node]:
    found = {n.attrs["data-chart"]: n for n in dom.walk() if "data-chart" in n.attrs}
    assert set(found) == set(CHARTS)
    return found


def test_the_dashboard_renders_every_chart_with_the_marts_numbers(
    fresh_stream, db, server, browser
):
    # Before the datamart exists the data endpoint says so, with a 200.
    before = httpx.get(f"{server}/dashboard/data", headers={"X-API-Key": KEY})
    assert before.status_code == 200 and before.json()["available"] is False
    assert "pulsemart datamart build" in before.json()["message"]
    empty = render(browser, f"{server}/dashboard#key={KEY}")
    [body] = empty.find(data_ready="true", data_available="false")
    assert "The datamart is not built yet" in empty.find(id="status")[0].text
    assert all(chart.attrs["data-points"] == "0" for chart in charts(empty).values())

    # 5,000 events from 22:00: the orders fall on two days. Some dirt, so rules fire.
    events = list(
        generate(5000, seed=7, dirty_rate=0.03, start_time=datetime(2024, 3, 1, 22, tzinfo=UTC))
    )
    produce_simulated(fresh_stream, events)
    catch_up(fresh_stream, defs, TOPICS)
    apply_pii_key(db)
    run_dbt(fresh_stream, ["build"], capture=True)

    dom = render(browser, f"{server}/dashboard#key={KEY}")
    [body] = dom.find(data_ready="true")
    assert body.tag == "body" and "data-error" not in body.attrs, body.attrs
    found = charts(dom)
    for name, points in expected_points(db).items():
        assert points > 0, f"the simulated data should give {name} something to draw"
        assert int(found[name].attrs["data-points"]) == points, name
        if name != "dq-top-rules":
            assert (
                found[name].count("svg") == 1
                and found[name].count("rect") + found[name].count("circle") >= points
            )
    assert expected_points(db)["sales-by-day"] >= 2 and found["sales-by-day"].count("path") == 1
    assert found["dq-top-rules"].count("tr") == expected_points(db)["dq-top-rules"] + 1

    # The labels show the database's figures.
    net = scalar(db, "select round(sum(net_revenue), 2) from marts.agg_sales_daily")
    [label] = dom.find(data_total="net_revenue")
    assert label.text.replace(",", "") == f"{net:.2f}"
    assert f"total {net:,.2f}" in found["sales-by-day"].text
    top_country, top_country_revenue = db.execute(
        "select country, round(sum(net_revenue), 2) from marts.agg_sales_daily group by 1 order by 2 desc, 1 "
        "limit 1"
    ).fetchone()
    assert (
        top_country in found["sales-by-country"].text
        and f"{top_country_revenue:,.2f}" in found["sales-by-country"].text
    )
    sessions = scalar(db, "select sum(sessions) from marts.agg_funnel_daily")
    assert f"{sessions:,} (100.0%)" in found["funnel"].text

    # No model evaluated: evaluations earlier tests wrote to this database are set aside (and
    # put back at the end), so the empty state is always checked.
    db.execute("create temp table evaluations_aside as select * from governance.model_evaluations")
    db.execute("delete from governance.model_evaluations")
    db.commit()
    try:
        empty = charts(render(browser, f"{server}/dashboard#key={KEY}"))["model-performance"]
        assert empty.attrs["data-points"] == "0"
        assert NO_MODEL in empty.text
        _show_evaluations(db, browser, server)
    finally:
        db.rollback()
        db.execute("delete from serving.model_deployments where model_name = 'dashboard-test'")
        db.execute("delete from governance.model_evaluations")
        db.execute("insert into governance.model_evaluations select * from evaluations_aside")
        db.execute("drop table evaluations_aside")
        db.commit()


def _show_evaluations(db, browser, server) -> None:
    """Evaluations appear as grouped bars, and the served model is named as such."""
    db.execute(
        "insert into governance.model_evaluations (evaluated_at, model_name, model_version, role, "
        "metric, value) values "
        "(now(), 'dashboard-test', '2', 'champion', 'ndcg@10', 0.3), "
        "(now(), 'dashboard-test', '2', 'champion', 'hit_rate@10', 0.5), "
        "(now(), 'dashboard-test', '3', 'challenger', 'ndcg@10', 0.35)"
    )
    db.commit()
    models = charts(render(browser, f"{server}/dashboard#key={KEY}"))["model-performance"]
    assert int(models.attrs["data-points"]) >= 3 and models.count("svg") >= 1
    assert "dashboard-test (not served," in models.text
    db.execute(
        "insert into serving.model_deployments (model_name, model_version, deployed_by) "
        "values ('dashboard-test', '2', 'test_dashboard')"
    )
    db.commit()
    models = charts(render(browser, f"{server}/dashboard#key={KEY}"))["model-performance"]
    assert "dashboard-test (serving v2," in models.text  # the served model, not the newest


def test_without_the_key_the_page_says_how_to_open_it(fresh_stream, server, browser):
    for fragment, message in (("", "API key missing"), ("#key=wrong", "API key rejected (403)")):
        dom = render(browser, f"{server}/dashboard{fragment}")
        [body] = [n for n in dom.walk() if n.tag == "body"]
        assert message in body.attrs.get("data-error", "") and "data-ready" not in body.attrs
        [status] = dom.find(id="status")
        assert message in status.text
        assert all("data-points" not in chart.attrs for chart in charts(dom).values())
