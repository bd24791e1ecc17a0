"""Entry point of the `pulsemart` console script."""

from __future__ import annotations

import faulthandler
import io
import signal
import sys
from contextlib import suppress
from importlib.metadata import entry_points

import click

from pulsemart import __version__
from pulsemart.cli.archive import archive
from pulsemart.cli.datamart import datamart
from pulsemart.cli.experiment import experiment
from pulsemart.cli.model import model
from pulsemart.cli.quality import dq, quarantine
from pulsemart.cli.replay import replay
from pulsemart.cli.serve import serve
from pulsemart.cli.services import services
from pulsemart.cli.simulate import simulate
from pulsemart.cli.stream import stream
from pulsemart.cli.trace import trace
from pulsemart.cli.up import up

PLUGIN_GROUP = "pulsemart.commands"


class _Group(click.Group):
    """Errors that name a setting or a service to start are the user's to fix: shown as one
    line (`Error: …`, exit 1), never as a traceback, whichever command met them.

    Commands that drive Dagster jobs (`ingest`) belong to the orchestration package, which
    registers them as `pulsemart.commands` entry points: the core names no Dagster module, and
    each is imported only when it runs. `bench` is loaded from the checkout
    (pulsemart/cli/dev.py), so an installed wheel says why it has none."""

    @staticmethod
    def _plugins() -> dict:
        return {point.name: point for point in entry_points(group=PLUGIN_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins(), "bench"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "bench":
            from pulsemart.cli.dev import bench_command

            return bench_command()
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in (plugins := self._plugins()):
            command = plugins[cmd_name].load()
        return command

    def invoke(self, ctx: click.Context):
        from pulsemart.config import SettingsError
        from pulsemart.local.processes import ServiceError
        from pulsemart.store.db import DatabaseError

        # An operator (or a test) asks a command that seems stuck where it is: `kill -USR1 PID`
        # prints every thread's stack to its stderr and the command carries on.
        # (Not where stderr is no file, as under click's CliRunner.)
        if hasattr(signal, "SIGUSR1") and sys.__stderr__ is not None:
            with suppress(AttributeError, ValueError, io.UnsupportedOperation):
                faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)

        try:
            return super().invoke(ctx)
        except (SettingsError, ServiceError, DatabaseError) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="pulsemart")
def cli() -> None:
    """pulsemart: real-time e-commerce personalization on Kafka, PostgreSQL and Dagster."""


cli.add_command(services)
cli.add_command(up)
cli.add_command(simulate)
cli.add_command(stream)
cli.add_command(replay)
cli.add_command(quarantine)
cli.add_command(dq)
cli.add_command(serve)
cli.add_command(datamart)
model.add_command(experiment)
cli.add_command(model)
cli.add_command(trace)
cli.add_command(archive)
