"""`pulsemart up`: everything a laptop needs, stopped by one Ctrl-C."""

from __future__ import annotations

import click

from pulsemart.config import load_settings
from pulsemart.local.launcher import TRICKLE_DIRTY_RATE, run_up
from pulsemart.local.processes import ServiceError


@click.command("up")
@click.option("--ui-port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--api-port", default=8000, show_default=True, help="Port of the serving API.")
@click.option(
    "--rate", default=5.0, show_default=True, help="Simulated events per second (0: none)."
)
@click.option(
    "--dirty-rate",
    type=click.FloatRange(0.0, 1.0),
    default=TRICKLE_DIRTY_RATE,
    show_default=True,
    help="Fraction of the trickle's activity events to corrupt, so the "
    "rule engine's fixes and quarantine show (0: clean).",
)
@click.option(
    "--stream-workers",
    default=1,
    show_default=True,
    type=click.IntRange(0, 16),
    help="Real-time workers (`pulsemart stream`) to run; 0 leaves the sensor lane alone.",
)
def up(ui_port: int, api_port: int, rate: float, dirty_rate: float, stream_workers: int) -> None:
    """Start the services, Dagster (UI and daemon running the sensors), a real-time worker,
    the serving API and a trickle of events."""
    try:
        run_up(
            load_settings(),
            ui_port,
            rate,
            echo=click.echo,
            api_port=api_port,
            dirty_rate=dirty_rate,
            stream_workers=stream_workers,
        )
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
