"""`pulsemart datamart parse|build|docs`: the dbt datamart outside Dagster."""

from __future__ import annotations

import click

from pulsemart.config import load_settings
from pulsemart.datamart.docs import generate_docs
from pulsemart.datamart.pii import apply_pii_key
from pulsemart.datamart.run import DbtError, run_dbt
from pulsemart.store.db import connect_migrated


@click.group()
def datamart() -> None:
    """Build the dbt datamart (marts.*) from the clean layer."""


@datamart.command()
def parse() -> None:
    """Write dbt_project/target/manifest.json, which the Dagster code location loads."""
    _run(["parse", "--quiet"], load_settings(), offline=True)
    click.echo("dbt manifest written to dbt_project/target/manifest.json")


@datamart.command()
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--select", "selection", default=None, help="dbt selection, e.g. 'fct_order_lines+'.")
def build(full_refresh: bool, selection: str | None) -> None:
    """dbt build: models, snapshot, data tests and unit tests. Incremental by default."""
    settings = load_settings()
    with connect_migrated(settings) as conn:
        apply_pii_key(conn, settings.pii_key)
    args = [
        "build",
        *(["--full-refresh"] if full_refresh else []),
        *(["--select", selection] if selection else []),
    ]
    _run(args, settings)


@datamart.command()
def docs() -> None:
    """Generate the dbt docs site and publish it under $PULSEMART_HOME/dbt_docs."""
    try:
        index = generate_docs(load_settings())
    except DbtError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"docs published: {index}")


def _run(args: list[str], settings, offline: bool = False) -> None:
    try:
        run_dbt(settings, args, offline=offline)
    except DbtError as exc:
        raise click.ClickException(str(exc)) from exc
