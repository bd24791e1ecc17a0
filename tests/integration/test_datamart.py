"""The datamart built through Dagster: real and simulated data, incremental runs, SCD2, PII."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from decimal import Decimal

import dagster as dg
import pytest
from click.testing import CliRunner

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.cli.main import cli
from pulsemart.contracts import build_event, encode_event, key_for, topic_for
from pulsemart.datamart.docs import docs_dir
from pulsemart.stream.simulator import generate
from tests.data import RETAIL_SAMPLE as SAMPLE
from tests.integration.helpers import produce_raw, produce_simulated

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOPICS = ["shop.catalog", "shop.events"]
PII_KEY = "test-only-pii-key"


def build_datamart(db, full_refresh: bool = False) -> dg.ExecuteInProcessResult:
    # End the test's read transaction first: dbt swaps tables in, which waits for readers.
    db.rollback()
    job = defs.resolve_job_def("datamart_full_build" if full_refresh else "datamart_build")
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return result


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    evaluations = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    return {f"{ev.asset_key.to_user_string()}:{ev.check_name}": ev.passed for ev in evaluations}


def clean_line_total(db) -> Decimal:
    """The clean layer's order-line total, computed in Python from the stored floats."""
    rows = db.execute("select quantity, unit_price from quality.order_lines_clean").fetchall()
    return sum((Decimal(repr(q)) * Decimal(repr(p)) for q, p in rows), Decimal(0)).quantize(
        Decimal("0.01")
    )


@pytest.fixture
def pii_key(monkeypatch):
    monkeypatch.setenv("PULSEMART_PII_KEY", PII_KEY)
    return PII_KEY.encode()


def test_real_sample_builds_with_every_check_passing_and_lines_conserved(fresh_stream, db, pii_key):
    assert CliRunner().invoke(cli, ["replay", str(SAMPLE)]).exit_code == 0
    catch_up(fresh_stream, defs, TOPICS)

    checks = check_results(build_datamart(db))
    assert len(checks) >= 40
    assert [name for name, passed in checks.items() if not passed] == []
    assert "datamart/fct_order_lines:assert_order_lines_conserved" in checks

    clean = db.execute("select count(*) from quality.order_lines_clean").fetchone()[0]
    fact, amount = db.execute(
        "select count(*), sum(line_amount) from marts.fct_order_lines"
    ).fetchone()
    assert fact == clean > 200_000
    assert amount.quantize(Decimal("0.01")) == clean_line_total(db)
    # Replayed line ids are `<file>:<row>`: unique, each once in the fact table.
    assert (
        db.execute("select count(distinct line_id) from marts.fct_order_lines").fetchone()[0]
        == fact
    )

    # Customers appear only as HMAC-SHA256 under the configured key, never as the shop's id.
    customer = db.execute(
        "select customer_id from quality.events_clean where customer_id is not null "
        "and event_type = 'order_placed' limit 1"
    ).fetchone()[0]
    expected = hmac.new(pii_key, customer.encode(), hashlib.sha256).hexdigest()
    assert (
        db.execute(
            "select count(*) from marts.dim_customer where customer_key = %s", (expected,)
        ).fetchone()[0]
        == 1
    )
    for table in ("fct_order_lines", "dim_customer", "customer_rfm", "fct_sessions"):
        leaked = db.execute(
            "select count(*) from information_schema.columns where table_schema = 'marts' "
            "and table_name = %s and column_name = 'customer_id'",
            (table,),
        ).fetchone()[0]
        assert leaked == 0, table

    # Cancellations net: the netted orders never exceed what was ordered.
    gross, net = db.execute(
        "select sum(gross_revenue), sum(net_revenue) from marts.agg_sales_daily"
    ).fetchone()
    assert net < gross


def test_incremental_build_touches_only_new_rows_and_keeps_product_history(
    fresh_stream, db, pii_key
):
    produce_simulated(fresh_stream, list(generate(3000, seed=21)))
    catch_up(fresh_stream, defs, TOPICS)
    build_datamart(db)
    before = dict(
        db.execute("select order_line_key, xmin::text from marts.fct_order_lines").fetchall()
    )
    sessions_before = db.execute("select count(*) from marts.fct_sessions").fetchone()[0]
    assert before and sessions_before

    # New batches: more shop activity, and a later price and sell-out for one product.
    product, price = db.execute(
        "select product_id, unit_price from marts.dim_product where is_current "
        "and unit_price is not null order by product_id limit 1"
    ).fetchone()
    last = db.execute("select max(event_time) from quality.events_clean").fetchone()[0]
    produce_simulated(fresh_stream, list(generate(2000, seed=22)))
    for event in (
        build_event(
            "price_changed",
            event_time=last + timedelta(hours=1),
            source="test",
            product_id=product,
            unit_price=round(price * 2 + 1, 2),
            currency="GBP",
        ),
        build_event(
            "availability_changed",
            event_time=last + timedelta(hours=1),
            source="test",
            product_id=product,
            stock=0,
            available=False,
            reason="sold_out",
        ),
    ):
        produce_raw(
            fresh_stream,
            topic_for(event["event_type"]),
            [encode_event(event)],
            keys=[key_for(event)],
        )
    catch_up(fresh_stream, defs, TOPICS)
    new_lines = db.execute("select count(*) from quality.order_lines_clean").fetchone()[0] - len(
        before
    )
    assert new_lines > 0

    checks = check_results(build_datamart(db))
    assert [name for name, passed in checks.items() if not passed] == []
    after = dict(
        db.execute("select order_line_key, xmin::text from marts.fct_order_lines").fetchall()
    )
    untouched = {key for key, xmin in before.items() if after.get(key) == xmin}
    assert untouched == set(before)  # the incremental run rewrote none of the earlier rows
    assert len(after) - len(before) == new_lines
    assert db.execute("select sum(line_amount) from marts.fct_order_lines").fetchone()[0].quantize(
        Decimal("0.01")
    ) == clean_line_total(db)

    versions = db.execute(
        "select unit_price, available, is_current from marts.dim_product "
        "where product_id = %s order by valid_from",
        (product,),
    ).fetchall()
    assert versions[0][:2] == (price, True) and versions[0][2] is False
    assert versions[-1] == (round(price * 2 + 1, 2), False, True)

    # The daily full rebuild agrees with the incremental one, and publishes the docs site.
    build_datamart(db, full_refresh=True)
    assert db.execute("select count(*) from marts.fct_order_lines").fetchone()[0] == len(after)
    catalog = json.loads((docs_dir(fresh_stream) / "catalog.json").read_text())
    assert "model.pulsemart.fct_order_lines" in catalog["nodes"]
    assert (docs_dir(fresh_stream) / "index.html").stat().st_size > 10_000
