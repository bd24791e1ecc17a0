"""The datamart's incremental runs through Dagster: only new rows are touched, product history
is kept as SCD2, and the docs are generated."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.contracts import build_event, encode_event, key_for, topic_for
from pulsemart.datamart.docs import docs_dir
from pulsemart.stream.simulator import generate
from tests.integration.datamart_support import (
    TOPICS,
    build_datamart,
    check_results,
    clean_line_total,
)
from tests.integration.helpers import produce_raw, produce_simulated

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
