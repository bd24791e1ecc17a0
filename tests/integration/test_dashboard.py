"""The dashboard end to end: simulated events → ingest → quality → dbt datamart → the API under
uvicorn → headless Chromium, whose rendered DOM must show every chart with the database's
numbers, and whose layout (measured over the DevTools protocol) must keep every panel's title
at one size and inside its panel, on a narrow screen and a wide one."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

# websockets comes with uvicorn[standard], a dependency of the API.
from websockets.sync.client import connect

from ml.experiment_stats import mean_interval, wilson
from ml.names import RECOMMENDER
from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.datamart.pii import apply_pii_key
from pulsemart.datamart.run import run_dbt
from pulsemart.serving.api import create_app
from pulsemart.serving.dashboard import NO_MODEL
from pulsemart.serving.dashboard_experiment import MART_NOT_BUILT, NO_EXPOSURES
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
    "sales-over-time",
    "sales-by-country",
    "funnel",
    "top-products",
    "top-categories",
    "dq-scorecard",
    "dq-top-rules",
    "model-performance",
    "experiment",
)
VIEWPORTS = ((400, 900), (1600, 1000))  # a phone held upright, a desktop screen
LONG_MODEL = "dashboard-test-" + "x" * 60  # no place to break a line


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


def buckets(db, grain: str) -> int:
    """The `grain` buckets from the first order line's to the last's, both included."""
    return db.execute(
        "select (extract(epoch from date_trunc(%(grain)s, max(ordered_at), 'UTC') "
        "- date_trunc(%(grain)s, min(ordered_at), 'UTC')) "
        "/ extract(epoch from ('1 ' || %(grain)s)::interval))::bigint + 1 "
        "from marts.fct_order_lines",
        {"grain": grain},
    ).fetchone()[0]


def expected_points(db) -> dict:
    """What each chart should draw, from the marts themselves."""
    return {
        # The orders span about five hours: drawn per hour.
        "sales-over-time": buckets(db, "hour"),
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
    assert found["sales-over-time"].count("path") == 1
    assert found["sales-over-time"].attrs["data-grain"] == "hour"
    assert "Net revenue per hour" in found["sales-over-time"].text
    assert "hour (UTC)" in found["sales-over-time"].text  # the axis names its grain
    assert scalar(db, "select count(distinct order_date) from marts.agg_sales_daily") == 2
    assert found["dq-top-rules"].count("tr") == expected_points(db)["dq-top-rules"] + 1

    # The labels show the database's figures.
    net = scalar(db, "select round(sum(net_revenue), 2) from marts.agg_sales_daily")
    [label] = dom.find(data_total="net_revenue")
    assert label.text.replace(",", "") == f"{net:.2f}"
    assert f"total {net:,.2f}" in found["sales-over-time"].text
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
    assert found["experiment"].attrs["data-points"] == "0"  # no figures, and it says why
    assert found["experiment"].find(**{"class": "message"})

    _first_hour_per_minute(db, browser, server)

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
        with _running_experiment(db) as experiment_id:
            _show_experiment(db, browser, server, experiment_id)
            _panel_text_fits(db, browser, server)
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


def _first_hour_per_minute(db, browser, server) -> None:
    """A demo's first hour is drawn per minute: the order lines after the first 50 minutes are
    set aside (and put back)."""
    db.execute(
        "create temp table lines_aside as select * from marts.fct_order_lines "
        "where ordered_at > (select min(ordered_at) from marts.fct_order_lines) "
        "+ interval '50 minutes'"
    )
    db.execute(
        "delete from marts.fct_order_lines l using lines_aside a "
        "where l.order_line_key = a.order_line_key"
    )
    db.commit()
    try:
        chart = charts(render(browser, f"{server}/dashboard#key={KEY}"))["sales-over-time"]
        assert chart.attrs["data-grain"] == "minute"
        assert int(chart.attrs["data-points"]) == buckets(db, "minute") > 1
        assert "Net revenue per minute" in chart.text and "minute (UTC)" in chart.text
    finally:
        db.rollback()
        db.execute("insert into marts.fct_order_lines select * from lines_aside")
        db.execute("drop table lines_aside")
        db.commit()


STARTED = datetime(2024, 3, 1, 22, tzinfo=UTC)
# (variant, day, exposures, clicks, purchases, revenue, revenue squared), as the mart has them.
EXPERIMENT_DAYS = (
    ("champion", 1, 1200, 96, 18, Decimal("150.40"), Decimal("4210.50")),
    ("champion", 2, 800, 70, 11, Decimal("99.10"), Decimal("3000.25")),
    ("challenger", 1, 900, 81, 15, Decimal("140.20"), Decimal("5000.00")),
    ("challenger", 2, 700, 60, 9, Decimal("80.90"), Decimal("2300.75")),
)
# The mart another change builds, as this test needs it when the dbt build has not made it.
EXPERIMENT_MART = """
create table marts.agg_experiment_daily (
    exposure_date date, experiment_id bigint, variant text, model_version text,
    exposures bigint, clicks bigint, ctr double precision, ctr_low double precision,
    ctr_high double precision, purchases bigint, conversion double precision,
    conversion_low double precision, conversion_high double precision, revenue numeric,
    revenue_sq numeric, revenue_per_exposure double precision, rpe_low double precision,
    rpe_high double precision
)
"""


@contextlib.contextmanager
def _running_experiment(db):
    """A running experiment on the recommender, champion v3 and challenger v4 at 40%. One
    that an earlier test left running is stopped meanwhile (one runs at a time per model)."""
    running = [
        row[0]
        for row in db.execute(
            "select experiment_id from serving.experiments "
            "where model_name = %s and status = 'running'",
            (RECOMMENDER,),
        )
    ]
    db.execute(
        "update serving.experiments set status = 'stopped' where experiment_id = any(%s)",
        (running,),
    )
    experiment_id = db.execute(
        "insert into serving.experiments (model_name, champion_version, started_at, started_by) "
        "values (%s, '3', %s, 'test_dashboard') returning experiment_id",
        (RECOMMENDER, STARTED),
    ).fetchone()[0]
    db.execute(
        "insert into serving.experiment_variants "
        "(experiment_id, variant, model_version, share, low, high) "
        "values (%s, 'challenger', '4', 0.4, 0, 0.4)",
        (experiment_id,),
    )
    db.commit()
    try:
        yield experiment_id
    finally:
        db.rollback()
        if scalar(db, "select to_regclass('marts.agg_experiment_daily') is not null"):
            db.execute(
                "delete from marts.agg_experiment_daily where experiment_id = %s",
                (experiment_id,),
            )
        db.execute(
            "delete from serving.experiment_variants where experiment_id = %s", (experiment_id,)
        )
        db.execute("delete from serving.experiments where experiment_id = %s", (experiment_id,))
        db.execute(
            "update serving.experiments set status = 'running' where experiment_id = any(%s)",
            (running,),
        )
        db.commit()


def _percent(value: float) -> str:
    return f"{100 * value:,.2f}%"


def _with_interval(found, text) -> str:
    return f"{text(found.estimate)} ({text(found.low)} – {text(found.high)})"


def _show_experiment(db, browser, server, experiment_id: int) -> None:
    """The panel names the experiment, says why it has no figures while the mart has none, then
    shows each variant's figures as summed from the mart's days, with their intervals."""
    built = scalar(db, "select to_regclass('marts.agg_experiment_daily') is not null")
    panel = charts(render(browser, f"{server}/dashboard#key={KEY}"))["experiment"]
    [meta] = panel.find(data_experiment_id=str(experiment_id))
    assert meta.attrs["data-status"] == "running" and "Started 2024-03-01 22:00 UTC" in meta.text
    assert "champion v3 60.0%" in meta.text and "challenger v4 40.0%" in meta.text
    assert f"Experiment {experiment_id}: {RECOMMENDER}, running" in panel.text
    assert panel.attrs["data-points"] == "0"
    waiting = NO_EXPOSURES.format(experiment_id=experiment_id) if built else MART_NOT_BUILT
    assert waiting in panel.text

    if not built:
        db.execute(EXPERIMENT_MART)
    with db.cursor() as cur:
        cur.executemany(
            "insert into marts.agg_experiment_daily (exposure_date, experiment_id, variant, "
            "model_version, exposures, clicks, purchases, revenue, revenue_sq) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (date(2024, 3, day), experiment_id, variant, "3" if variant == "champion" else "4")
                + tuple(figures)
                for variant, day, *figures in EXPERIMENT_DAYS
            ],
        )
    db.commit()
    try:
        panel = charts(render(browser, f"{server}/dashboard#key={KEY}"))["experiment"]
        assert panel.attrs["data-points"] == "6"  # a point per variant and metric
        assert panel.count("circle") == 6 and panel.count("svg") == 1
        for variant in ("champion", "challenger"):
            days = [d for d in EXPERIMENT_DAYS if d[0] == variant]
            exposures, clicks, purchases = (sum(d[k] for d in days) for k in (2, 3, 4))
            revenue, revenue_sq = (float(sum(d[k] for d in days)) for k in (5, 6))
            [row] = panel.find(data_variant=variant)
            cells = [cell.text for cell in row.children]
            assert cells == [
                f"{variant} v{'3' if variant == 'champion' else '4'}",
                "60.0%" if variant == "champion" else "40.0%",
                f"{exposures:,}",
                _with_interval(wilson(clicks, exposures), _percent),
                _with_interval(wilson(purchases, exposures), _percent),
                _with_interval(mean_interval(revenue, revenue_sq, exposures), "{:,.2f}".format),
            ], variant
    finally:
        if not built:
            db.execute("drop table marts.agg_experiment_daily")
            db.commit()


class DevTools:
    """Headless Chromium driven over the DevTools protocol, to measure what a dumped DOM cannot
    show: computed styles and laid-out sizes."""

    def __init__(self, socket):
        self.socket = socket
        self.ids = itertools.count(1)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        message_id = next(self.ids)
        message = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:  # events arrive in between: skip them
            reply = json.loads(self.socket.recv(timeout=30))
            if reply.get("id") == message_id:
                assert "error" not in reply, reply["error"]
                return reply["result"]

    def evaluate(self, session: str, expression: str):
        found = self.send("Runtime.evaluate", session, expression=expression, returnByValue=True)
        assert "exceptionDetails" not in found, found["exceptionDetails"]
        return found["result"].get("value")

    def open(self, url: str, width: int, height: int) -> str:
        """A new tab of `width` x `height` CSS pixels showing `url` once the page is done."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.send("Page.navigate", session, url=url)
        deadline = time.monotonic() + 30
        while not self.evaluate(session, "document.body && document.body.dataset.ready"):
            assert time.monotonic() < deadline, "the dashboard did not finish drawing"
            time.sleep(0.1)
        return session


@contextlib.contextmanager
def devtools(browser: str) -> Iterator[DevTools]:
    profile = tempfile.mkdtemp(prefix="pulsemart-chromium-")
    flags = [f for f in CHROMIUM_FLAGS if not f.startswith("--virtual-time-budget")]
    process = subprocess.Popen(
        [browser, *flags, "--remote-debugging-port=0", f"--user-data-dir={profile}"]
        + ["about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Chromium writes the port it chose, and the browser's endpoint, into its profile.
        active = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline and process.poll() is None, "no DevTools port"
            time.sleep(0.05)
        port, path = active.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", proxy=None, max_size=None) as socket:
            yield DevTools(socket)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(profile, ignore_errors=True)


# Per panel: its titles' computed font size and their scroll and client widths, its own, and
# the font sizes of its charts' text.
MEASURE_PANELS = """
Array.from(document.querySelectorAll("[data-chart]")).map((panel) => ({
  chart: panel.dataset.chart,
  scroll: panel.scrollWidth,
  client: panel.clientWidth,
  titles: Array.from(panel.querySelectorAll("h2")).map((h) => ({
    text: h.textContent, size: getComputedStyle(h).fontSize,
    scroll: h.scrollWidth, client: h.clientWidth,
  })),
  chartText: Array.from(new Set(Array.from(panel.querySelectorAll("svg text"))
    .map((t) => getComputedStyle(t).fontSize))),
}))
"""


def _panel_text_fits(db, browser, server) -> None:
    """Every panel's title has one font size and fits its panel, and every chart's text has
    one size, the style sheet's --axis-size: on a narrow screen and a wide one. A model with a
    long name that cannot break gives the model panel a title longer than a phone's width."""
    db.execute(
        "insert into governance.model_evaluations (evaluated_at, model_name, model_version, "
        "role, metric, value) values (now(), %s, '1', 'champion', 'ndcg@10', 0.2)",
        (LONG_MODEL,),
    )
    db.commit()
    with devtools(browser) as tools:
        for width, height in VIEWPORTS:
            session = tools.open(f"{server}/dashboard#key={KEY}", width, height)
            axis_size = tools.evaluate(
                session,
                "getComputedStyle(document.documentElement).getPropertyValue('--axis-size')",
            )
            panels = tools.evaluate(session, MEASURE_PANELS)
            assert {p["chart"] for p in panels} == set(CHARTS)
            sizes = {t["size"] for p in panels for t in p["titles"]}
            assert len(sizes) == 1, (width, sizes)
            for panel in panels:
                assert panel["titles"], (width, panel["chart"])
                for title in panel["titles"]:
                    assert title["scroll"] <= title["client"], (width, panel["chart"], title)
                assert panel["scroll"] <= panel["client"], (width, panel)
            chart_sizes = {size for p in panels for size in p["chartText"]}
            assert chart_sizes == {axis_size.strip()}, (width, chart_sizes)
            long_titles = [t for p in panels for t in p["titles"] if LONG_MODEL in t["text"]]
            assert long_titles and all(t["client"] < width for t in long_titles)


def test_without_the_key_the_page_says_how_to_open_it(fresh_stream, server, browser):
    for fragment, message in (("", "API key missing"), ("#key=wrong", "API key rejected (403)")):
        dom = render(browser, f"{server}/dashboard{fragment}")
        [body] = [n for n in dom.walk() if n.tag == "body"]
        assert message in body.attrs.get("data-error", "") and "data-ready" not in body.attrs
        [status] = dom.find(id="status")
        assert message in status.text
        assert all("data-points" not in chart.attrs for chart in charts(dom).values())
