"""`pulsemart bench`: measure produce, quality, serving and ingest and write benchmarks/BENCHMARKS.md.

Every subcommand starts its own embedded stack in a temporary PULSEMART_HOME on a free port
and stops it at the end, because benchmarks recreate topics and truncate tables: they must
never touch a user's data.
"""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path

import click

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def _command() -> str:
    # The exact command, as typed, so a reader can rerun it.
    return shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])


output_option = click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_OUTPUT,
    show_default=True,
    help="Report to update (only this benchmark's section).",
)


def _produce_options(f):
    from pulsemart_bench.produce import DEFAULT_REPLAY_PATH

    f = click.option(
        "--produce-events",
        type=click.IntRange(min=1),
        default=200_000,
        show_default=True,
        help="Simulated events to produce.",
    )(f)
    f = click.option(
        "--replay-path",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=DEFAULT_REPLAY_PATH,
        show_default=True,
        help="Transaction file to replay.",
    )(f)
    return f


def _ingest_options(f):
    f = click.option(
        "--events",
        type=click.IntRange(min=1),
        default=500_000,
        show_default=True,
        help="Backlog of simulated events for the ingest benchmark.",
    )(f)
    f = click.option(
        "--batch-size",
        "batch_sizes",
        type=click.IntRange(min=1),
        multiple=True,
        default=(10_000, 100_000),
        show_default=True,
        help="Batch sizes for peak RSS.",
    )(f)
    f = click.option(
        "--latency-seconds",
        type=click.FloatRange(min=0),
        default=60,
        show_default=True,
        help="How long to trickle events under `pulsemart up` (0 skips the latency test).",
    )(f)
    f = click.option(
        "--repeats",
        type=click.IntRange(min=1),
        default=2,
        show_default=True,
        help="Rounds of raw consume + catch_up (each ratio uses its own round's anchor).",
    )(f)
    f = click.option(
        "--latency-rate",
        type=click.FloatRange(min=0, min_open=True),
        default=20,
        show_default=True,
        help="Events per second during the latency test.",
    )(f)
    return f


def _serving_options(f):
    f = click.option(
        "--serving-events",
        type=click.IntRange(min=1),
        default=20_000,
        show_default=True,
        help="Simulated events folded into the serving tables before the API load.",
    )(f)
    f = click.option(
        "--connections",
        type=click.IntRange(min=1, max=1000),
        default=50,
        show_default=True,
        help="wrk's keep-alive connections per endpoint.",
    )(f)
    f = click.option(
        "--seconds",
        type=click.FloatRange(min=1, max=600),
        default=20,
        show_default=True,
        help="Measured seconds of load per endpoint.",
    )(f)
    f = click.option(
        "--single-seconds",
        type=click.FloatRange(min=0, max=600),
        default=5,
        show_default=True,
        help="Seconds of one-connection load per endpoint (service time; 0 skips).",
    )(f)
    f = click.option(
        "--profile-seconds",
        type=click.FloatRange(min=0, max=600),
        default=10,
        show_default=True,
        help="Seconds of a second pass of the default trickle's live mix with py-spy sampling "
        "the API (0 skips it).",
    )(f)
    f = click.option(
        "--live-seconds",
        type=click.FloatRange(min=0, max=600),
        default=20,
        show_default=True,
        help="Measured seconds of the live mix under `pulsemart up`, per background rate "
        "(0 skips it).",
    )(f)
    f = click.option(
        "--freshness-seconds",
        type=click.FloatRange(min=0, max=1800),
        default=60,
        show_default=True,
        help="How long to produce price changes under `pulsemart up` (0 skips freshness).",
    )(f)
    f = click.option(
        "--freshness-rate",
        type=click.FloatRange(min=0, min_open=True, max=100),
        default=2,
        show_default=True,
        help="Price changes per second during the freshness test.",
    )(f)
    return f


@click.group("bench")
def bench() -> None:
    """Benchmarks with same-run anchors, written to benchmarks/BENCHMARKS.md."""


def _run(output: Path, *builders) -> None:
    """Run each builder in one temporary stack, writing its section as soon as it is done, so a
    failure late in `all` keeps the figures already measured."""
    from pulsemart_bench.report import write_sections
    from pulsemart_bench.stack import temporary_stack

    # SIGTERM as Ctrl-C: the stack's and each `pulsemart up`'s cleanup runs (by default SIGTERM
    # ends the process at once, and its stack runs on without it).
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    with temporary_stack() as settings:
        for build in builders:
            section = build(settings)
            write_sections(output, [section])
            click.echo(section.render())
            click.echo(f"\nwrote the {section.key} section of {output}\n")


@bench.command("produce")
@_produce_options
@click.option("--seed", type=int, default=1, show_default=True)
@output_option
def produce(produce_events: int, replay_path: Path, seed: int, output: Path) -> None:
    """Simulate and replay produce rates beside bare kafka-python on the same bytes."""
    from pulsemart_bench.sections import produce_section

    _run(output, lambda s: produce_section(s, _command(), produce_events, seed, replay_path, _echo))


@bench.command("ingest")
@_ingest_options
@click.option("--seed", type=int, default=1, show_default=True)
@output_option
def ingest(
    events: int,
    batch_sizes: tuple[int, ...],
    latency_seconds: float,
    latency_rate: float,
    repeats: int,
    seed: int,
    output: Path,
) -> None:
    """catch_up beside raw consume and COPY; peak RSS per batch size; end-to-end latency."""
    from pulsemart_bench.sections import ingest_section

    _run(
        output,
        lambda s: ingest_section(
            s,
            _command(),
            events,
            seed,
            list(batch_sizes),
            latency_seconds,
            latency_rate,
            _echo,
            repeats,
        ),
    )


@bench.command("quality")
@_produce_options
@click.option("--seed", type=int, default=1, show_default=True)
@output_option
def quality(produce_events: int, replay_path: Path, seed: int, output: Path) -> None:
    """The rule engine beside bare Pandera on the same frames; the simulator's scores."""
    from pulsemart_bench.sections import quality_section

    _run(output, lambda s: quality_section(_command(), produce_events, seed, replay_path, _echo))


@bench.command("serving")
@_serving_options
@click.option("--seed", type=int, default=1, show_default=True)
@output_option
def serving(
    serving_events: int,
    connections: int,
    seconds: float,
    single_seconds: float,
    live_seconds: float,
    profile_seconds: float,
    freshness_seconds: float,
    freshness_rate: float,
    seed: int,
    output: Path,
) -> None:
    """The serving API under load beside /health (the live mix under `pulsemart up` first);
    produce → search freshness."""
    from pulsemart_bench.sections import serving_section

    _run(
        output,
        lambda s: serving_section(
            s,
            _command(),
            serving_events,
            seed,
            connections,
            seconds,
            single_seconds,
            freshness_seconds,
            freshness_rate,
            _echo,
            live_seconds,
            profile_seconds,
        ),
    )


@bench.command("datamart")
@click.option(
    "--lines",
    type=click.IntRange(min=1000),
    default=1_000_000,
    show_default=True,
    help="Order lines written into the clean layer before the builds.",
)
@output_option
def datamart(lines: int, output: Path) -> None:
    """dbt full and incremental datamart builds beside a bare COPY … TO of the same rows."""
    from pulsemart_bench import datamart as bench_datamart

    _run(output, lambda s: bench_datamart.section(s, _command(), lines, _echo))


@bench.command("training")
@click.option(
    "--interactions",
    type=click.IntRange(min=1000),
    default=1_000_000,
    show_default=True,
    help="Synthetic purchases to train on.",
)
@output_option
def training(interactions: int, output: Path) -> None:
    """Recommender training time, peak memory and batch scoring rate beside the popularity baseline."""
    from pulsemart_bench import training as bench_training

    _run(output, lambda s: bench_training.section(_command(), interactions, _echo))


@bench.command("locations")
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Interleaved rounds of fresh interpreters per import.",
)
@click.option(
    "--latency-seconds",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Also trickle events under `pulsemart up --rate 0` this long (0 skips).",
)
@click.option(
    "--latency-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=20,
    show_default=True,
    help="Events per second during the latency test.",
)
@output_option
def locations(rounds: int, latency_seconds: float, latency_rate: float, output: Path) -> None:
    """Import time of each Dagster code location beside a bare `import dagster`."""
    from pulsemart_bench import locations as bench_locations

    _run(
        output,
        lambda s: bench_locations.section(
            s, _command(), rounds, latency_seconds, latency_rate, _echo
        ),
    )


@bench.command("realtime")
@click.option(
    "--seconds",
    type=click.FloatRange(min=1, max=1800),
    default=60,
    show_default=True,
    help="How long to produce price-change probes under each `pulsemart up` run.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True, max=100),
    default=2,
    show_default=True,
    help="Price-change probes per second.",
)
@click.option(
    "--events",
    type=click.IntRange(min=0),
    default=500_000,
    show_default=True,
    help="Backlog of simulated events for the catch-up rate (0 skips it).",
)
@click.option("--seed", type=int, default=7, show_default=True)
@output_option
def realtime(seconds: float, rate: float, events: int, seed: int, output: Path) -> None:
    """The real-time lane: freshness and cores under `pulsemart up` beside the sensor lane, and
    a worker's catch-up rate beside the rule engine alone."""
    from pulsemart_bench import realtime as bench_realtime

    _run(
        output, lambda s: bench_realtime.section(s, _command(), seconds, rate, events, seed, _echo)
    )


@bench.command("exposures")
@click.option(
    "--events",
    type=click.IntRange(min=1000),
    default=20_000,
    show_default=True,
    help="Simulated events folded into the serving tables first.",
)
@click.option("--connections", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--seconds",
    type=click.FloatRange(min=1, max=600),
    default=20,
    show_default=True,
    help="wrk's duration per run.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1, max=10),
    default=3,
    show_default=True,
    help="Pairs of server runs, exposures off then on.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@output_option
def exposures(
    events: int, connections: int, seconds: float, rounds: int, seed: int, output: Path
) -> None:
    """What logging exposures costs the recommendations route: the same load with
    PULSEMART_EXPOSURES off and on, alternated, each beside its own /health."""
    from pulsemart_bench import exposures as bench_exposures

    _run(
        output,
        lambda s: bench_exposures.section(
            s, _command(), events, connections, seconds, rounds, seed, _echo
        ),
    )


@bench.command("experiment")
@click.option(
    "--minutes",
    type=click.FloatRange(min=5, max=240),
    default=30,
    show_default=True,
    help="How long the demo runs, from `pulsemart up` on.",
)
@click.option(
    "--checkpoint-minutes",
    type=click.FloatRange(min=1),
    default=5,
    show_default=True,
    help="How often the experiment is read.",
)
@output_option
def experiment(minutes: float, checkpoint_minutes: float, output: Path) -> None:
    """The champion against popularity, 50/50, in the demo's first minutes (its own
    `pulsemart up` in a temporary home, default trickle)."""
    from pulsemart_bench import experiment_demo
    from pulsemart_bench.report import write_sections

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    section = experiment_demo.section(_command(), minutes, checkpoint_minutes, _echo)
    write_sections(output, [section])
    click.echo(section.render())
    click.echo(f"\nwrote the {section.key} section of {output}\n")


@bench.command("all")
@_produce_options
@_ingest_options
@_serving_options
@click.option(
    "--datamart-lines",
    type=click.IntRange(min=1000),
    default=1_000_000,
    show_default=True,
    help="Order lines for the datamart build benchmark.",
)
@click.option(
    "--training-interactions",
    type=click.IntRange(min=1000),
    default=1_000_000,
    show_default=True,
    help="Synthetic purchases for the training benchmark.",
)
@click.option("--seed", type=int, default=1, show_default=True)
@output_option
def all_(
    produce_events: int,
    replay_path: Path,
    events: int,
    batch_sizes: tuple[int, ...],
    latency_seconds: float,
    latency_rate: float,
    repeats: int,
    serving_events: int,
    connections: int,
    seconds: float,
    single_seconds: float,
    live_seconds: float,
    profile_seconds: float,
    freshness_seconds: float,
    freshness_rate: float,
    datamart_lines: int,
    training_interactions: int,
    seed: int,
    output: Path,
) -> None:
    """Run every benchmark in one temporary stack and write the report."""
    from pulsemart_bench import datamart as bench_datamart
    from pulsemart_bench import training as bench_training
    from pulsemart_bench.sections import (
        ingest_section,
        produce_section,
        quality_section,
        serving_section,
    )

    # Ingest last: its latency test runs `pulsemart up`, which stops the services on exit. Serving's
    # freshness test runs it too, and starts the services again when it is done.
    _run(
        output,
        lambda s: produce_section(s, _command(), produce_events, seed, replay_path, _echo),
        lambda s: quality_section(_command(), produce_events, seed, replay_path, _echo),
        lambda s: serving_section(
            s,
            _command(),
            serving_events,
            seed,
            connections,
            seconds,
            single_seconds,
            freshness_seconds,
            freshness_rate,
            _echo,
            live_seconds,
            profile_seconds,
        ),
        lambda s: bench_datamart.section(s, _command(), datamart_lines, _echo),
        lambda s: bench_training.section(_command(), training_interactions, _echo),
        lambda s: ingest_section(
            s,
            _command(),
            events,
            seed,
            list(batch_sizes),
            latency_seconds,
            latency_rate,
            _echo,
            repeats,
        ),
    )


def _echo(message: str) -> None:
    click.echo(message, err=True)
