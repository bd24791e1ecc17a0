"""Entry point of the `pulsemart` console script."""

from __future__ import annotations

import click

from pulsemart import __version__
from pulsemart.cli.archive import archive
from pulsemart.cli.datamart import datamart
from pulsemart.cli.ingest import ingest
from pulsemart.cli.model import model
from pulsemart.cli.quality import dq, quarantine
from pulsemart.cli.replay import replay
from pulsemart.cli.serve import serve
from pulsemart.cli.services import services
from pulsemart.cli.simulate import simulate
from pulsemart.cli.trace import trace
from pulsemart.cli.up import up


class _Group(click.Group):
    """Errors that name a setting or a service to start are the user's to fix: shown as one
    line (`Error: …`, exit 1), never as a traceback, whichever command met them.

    `bench` is loaded on demand from the checkout (pulsemart/cli/dev.py), so the other commands
    never pay for it and an installed wheel says why it has none."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), "bench"])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "bench":
            from pulsemart.cli.dev import bench_command

            return bench_command()
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        from pulsemart.config import SettingsError
        from pulsemart.local.processes import ServiceError
        from pulsemart.store.db import DatabaseError

        try:
            return super().invoke(ctx)
        except (SettingsError, ServiceError, DatabaseError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="pulsemart")
def cli() -> None:
    """pulsemart: real-time e-commerce personalization on Kafka, PostgreSQL and Dagster."""


cli.add_command(services)
cli.add_command(ingest)
cli.add_command(up)
cli.add_command(simulate)
cli.add_command(replay)
cli.add_command(quarantine)
cli.add_command(dq)
cli.add_command(serve)
cli.add_command(datamart)
cli.add_command(model)
cli.add_command(trace)
cli.add_command(archive)
