"""Commands of a development checkout: `pulsemart bench` runs the benchmark harness in the
repository's benchmarks/ folder, which is not part of the wheel (it drives Dagster jobs, starts
stacks and loads machines; an installed product has no use for it)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

HARNESS = "pulsemart_bench"


def _checkout_harness() -> Path | None:
    """benchmarks/ beside the pulsemart package, when pulsemart runs from a checkout."""
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    return folder if (folder / HARNESS / "__init__.py").is_file() else None


def bench_command() -> click.Command:
    """The harness's `bench` group, or a command that says why there is none."""
    try:
        from pulsemart_bench.cli import bench
    except ModuleNotFoundError as exc:
        if exc.name not in (HARNESS, f"{HARNESS}.cli"):
            raise
        folder = _checkout_harness()
        if folder is None:
            return _missing
        sys.path.insert(0, str(folder))
        from pulsemart_bench.cli import bench
    return bench


@click.command("bench", context_settings={"ignore_unknown_options": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def _missing(args: tuple[str, ...]) -> None:
    """Benchmarks (development checkout only)."""
    raise click.ClickException(
        "pulsemart bench needs a development checkout: the benchmark harness lives in the "
        "repository's benchmarks/ folder and is not installed with the package "
        "(clone the repository and run `make install`)."
    )
