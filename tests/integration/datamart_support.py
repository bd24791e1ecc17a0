"""What the datamart tests share: building through Dagster, reading its checks, the clean
layer's line total computed apart from SQL (the `pii_key` fixture is in
this folder's conftest.py)."""

from __future__ import annotations

from decimal import Decimal

import dagster as dg

from orchestration.definitions import defs

TOPICS = ["shop.catalog", "shop.events"]


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
