"""`pulsemart services up|down|status|env`: the embedded PostgreSQL and Kafka broker."""

from __future__ import annotations

import json
import shlex

import click

from pulsemart.config import load_settings
from pulsemart.local import stack
from pulsemart.local.processes import ServiceError


@click.group("services")
def services() -> None:
    """Start, stop and inspect the embedded PostgreSQL and Kafka-protocol broker."""


@services.command("up")
def services_up() -> None:
    """Start the embedded services (idempotent) and create the shop topics."""
    settings = load_settings()
    try:
        endpoints = stack.up(settings)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, value in endpoints.items():
        click.echo(f"{name}={value}")
    click.echo("services are up; `pulsemart services env` prints the settings to export")


@services.command("down")
def services_down() -> None:
    """Stop the embedded services. Topics live in memory and are gone afterwards."""
    stopped = stack.down(load_settings())
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@services.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def services_status(as_json: bool) -> None:
    """Show whether each service runs, and where."""
    rows = stack.status(load_settings())
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        state = "external" if row.get("external") else ("running" if row["running"] else "stopped")
        where = row.get("url") or row.get("bootstrap") or row.get("where") or ""
        click.echo(f"{row['service']:<9} {state:<8} {where}")


@services.command("env")
def services_env() -> None:
    """Print `export` lines for the current settings (eval "$(pulsemart services env)")."""
    settings = load_settings()
    try:
        database_url = stack.database_url(settings)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    values = {
        "PULSEMART_HOME": str(settings.home),
        "PULSEMART_PROFILE": settings.profile,
        "PULSEMART_DATABASE_URL": database_url,
        "PULSEMART_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
    }
    for name, value in values.items():
        click.echo(f"export {name}={shlex.quote(value)}")
