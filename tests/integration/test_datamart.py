"""The datamart built through Dagster on the real sample: every check passes, lines are
conserved to the penny, customers appear only hashed. The incremental runs, SCD2 and docs are
test_datamart_incremental.py (a module each, so pytest-xdist runs the two long builds side by
side)."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest
from click.testing import CliRunner

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.cli.main import cli
from tests.data import RETAIL_SAMPLE as SAMPLE
from tests.integration.datamart_support import (
    TOPICS,
    build_datamart,
    check_results,
    clean_line_total,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
