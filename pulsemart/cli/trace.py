"""`pulsemart trace line LINE_ID`: the lineage audit of one order line."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from pulsemart.config import load_settings
from pulsemart.lineage.render import render
from pulsemart.lineage.trace import trace_line
from pulsemart.store.db import connect_migrated


@click.group()
def trace() -> None:
    """Trace a record from its source through Kafka, the rules and dbt to the marts."""


@trace.command("line")
@click.argument("line_id")
@click.option(
    "--order",
    "order_id",
    default=None,
    help="Only lines of this order (simulated line ids repeat).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
def line(line_id: str, order_id: str | None, as_json: bool) -> None:
    """Print the path of order line LINE_ID: source row or Kafka coordinates, the raw record, the
    rule decisions and repairs with the rule-set version, the batch and Dagster run, the marts."""
    with connect_migrated(load_settings()) as conn:
        traces = trace_line(conn, line_id, order_id)
    if not traces:
        raise click.ClickException(
            f"no order line {line_id!r}"
            + (f" in order {order_id!r}" if order_id else "")
            + " in the clean layer or quarantine"
        )
    if as_json:
        click.echo(json.dumps([asdict(t) for t in traces], default=str, indent=2))
        return
    if len(traces) > 1:
        click.echo(f"{len(traces)} lines have id {line_id!r}; use --order to pick one\n")
    click.echo("\n\n".join(render(t) for t in traces))
