"""`pulsemart trace line`: a fixed line and a quarantined-then-released line, source to marts."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.cli.main import cli
from pulsemart.contracts import build_event, encode_event
from pulsemart.quality.rules import default_rules_path
from tests.integration.helpers import produce_raw

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOPICS = ["shop.catalog", "shop.events"]


def order(order_id: str, product: str, **extra) -> dict:
    event = build_event(
        "order_placed",
        event_time="2024-05-01T10:00:00.000Z",
        source="test",
        order_id=order_id,
        customer_id="C-trace",
        session_id=None,
        country="France",
        currency="EUR",
        lines=[{"line_id": 1, "product_id": product, "quantity": 2, "unit_price": 3.5}],
    )
    return {**event, **extra}


def test_trace_shows_fixed_and_released_lines_from_kafka_to_the_marts(fresh_stream, db, tmp_path):
    catalog = build_event(
        "product_upserted",
        event_time="2024-04-01T00:00:00.000Z",
        source="test",
        product_id="P-trace",
        description="Trace mug",
        unit_price=3.5,
    )
    produce_raw(fresh_stream, "shop.catalog", [encode_event(catalog)], keys=["P-trace"])
    fixed = order("O-fixed", "P-trace", event_time="5/1/24 10:00")  # US time: repaired
    held_back = order("O-held", "P-trace", campaign="spring")  # undeclared field: quarantined
    produce_raw(
        fresh_stream,
        "shop.events",
        [json.dumps(e).encode() for e in (fixed, held_back)],
        keys=["C-trace", "C-trace"],
    )
    catch_up(fresh_stream, defs, TOPICS)
    assert (
        db.execute(
            "select count(*) from quality.quarantine where event_id = %s", (held_back["event_id"],)
        ).fetchone()[0]
        == 1
    )

    document = yaml.safe_load(Path(default_rules_path()).read_text())
    document["version"] = "9.9.9-trace"
    document["rules"] = [r for r in document["rules"] if r["id"] != "schema.unknown_field"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(document))
    assert CliRunner().invoke(cli, ["quarantine", "replay", "--rules", str(rules)]).exit_code == 0
    db.rollback()
    assert (
        defs.resolve_job_def("datamart_build")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral())
        .success
    )

    both = CliRunner().invoke(cli, ["trace", "line", "1"])
    assert both.exit_code == 0, both.output
    assert "2 lines have id '1'" in both.output

    out = CliRunner().invoke(cli, ["trace", "line", "1", "--order", "O-fixed"]).output
    assert "order O-fixed" in out and "shop.events[" in out and "ingest batch" in out
    assert "fixed by rules 1." in out and "time.format: event_time '5/1/24 10:00'" in out
    assert "quarantined" not in out
    assert 'marts.fct_order_lines: {"dq_confidence"' in out and '"dq_decision": "fixed"' in out

    released = json.loads(
        CliRunner().invoke(cli, ["trace", "line", "1", "--order", "O-held", "--json"]).output
    )
    assert len(released) == 1
    trace = released[0]
    assert any("unknown_field" in reason for reason in trace["quarantine"]["reasons"])
    assert trace["quarantine"]["released_by_rule_set_version"] == "9.9.9-trace"
    assert trace["releases"][0]["details"]["rule_set_version"] == "9.9.9-trace"
    assert trace["decision"]["rule_set_version"] == "9.9.9-trace"
    assert trace["raw"]["dagster_run_id"]
    assert [row["line_amount"] for row in trace["marts"]["marts.fct_order_lines"]] == ["7.0000"]

    missing = CliRunner().invoke(cli, ["trace", "line", "no-such-line"])
    assert missing.exit_code != 0 and "no order line 'no-such-line'" in missing.output
