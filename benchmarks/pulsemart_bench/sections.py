"""Running each benchmark and turning its figures into a report Section."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pulsemart.config import EVENTS_TOPIC, Settings
from pulsemart_bench import ingest, latency, machine, memory, produce
from pulsemart_bench.measure import Measurement, percentile, ratio
from pulsemart_bench.report import Section, Table, fmt_int, fmt_ratio, rate_table

# Landing (rows built, COPY, offsets) may cost at most 30% of the rate a bare consumer reads
# the topic at, so the sensor lane keeps up with what Kafka delivers.
INGEST_TARGET = 0.70
LATENCY_P95_TARGET_S = 10.0


def produce_section(
    settings: Settings,
    command: str,
    n_events: int,
    seed: int,
    replay_path: Path,
    echo: Callable[[str], None],
) -> Section:
    echo(f"bench produce: {n_events:,} simulated events (seed {seed}), replay of {replay_path}")
    pairs = produce.run(settings, n_events, seed, replay_path)
    return Section(
        key="produce",
        title="Produce: simulate and replay vs bare kafka-python",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=(
            "Producer settings are `make_producer`'s (acks=all, linger 5 ms, 256 KiB batches) for "
            "every row. Anchors send the same records, pre-materialised, in a bare `send` loop "
            "plus `flush`; topics are recreated before each row. Bytes are key + value."
        ),
        tables=[rate_table(pairs)],
    )


def _rss_table(rows: list[memory.PeakRss]) -> Table:
    table = Table(
        [
            "max_events (batch size)",
            "Lag behind the batch",
            "Records read",
            "RSS before reading MiB",
            "Peak RSS before reading MiB",
            "Peak RSS (ru_maxrss) MiB",
            "VmHWM MiB",
            "Growth MiB",
            "Seconds",
        ]
    )
    for r in rows:
        table.rows.append(
            [
                fmt_int(r.max_events),
                fmt_int(r.lag),
                fmt_int(r.records),
                f"{r.baseline_mib:.0f}",
                f"{r.import_peak_mib:.0f}",
                f"{r.peak_mib:.0f}",
                f"{r.vmhwm_mib:.0f}",
                f"{r.growth_mib:.0f}",
                f"{r.seconds:.1f}",
            ]
        )
    return table


def latency_table(result: latency.LatencyResult) -> Table:
    table = Table(["Measure", "Samples", "p50 s", "p95 s", "max s", "Target"])
    for name, values in (
        ("produce → row visible to a reader (poll every 0.2 s)", result.visible_s),
        ("produce → ingested_at (transaction start; understates)", result.ingested_s),
        ("ingest batch duration (read + write seconds)", result.batch_s),
    ):
        p50, p95 = percentile(values, 50), percentile(values, 95)
        table.rows.append(
            [
                name,
                fmt_int(len(values)),
                f"{p50:.2f}" if p50 is not None else "—",
                f"{p95:.2f}" if p95 is not None else "—",
                f"{max(values):.2f}" if values else "—",
                f"p95 ≤ {LATENCY_P95_TARGET_S:.0f} s" if values is result.visible_s else "",
            ]
        )
    return table


def _throughput(
    settings: Settings, repeats: int, records: list, echo
) -> tuple[Table, list[str], list]:
    """Anchor and catch_up alternate `repeats` times, each catch_up beside the anchor measured
    just before it: on a small shared machine the noise between runs is the size of the margin."""
    pairs: list[tuple[Measurement, Measurement | None]] = []
    ratios, notes = [], []
    for attempt in range(1, repeats + 1):
        echo(f"  raw consume (anchor), round {attempt}")
        consume, consumed = ingest.raw_consume(settings, EVENTS_TOPIC)
        consume = replace(consume, name=f"{consume.name}, round {attempt}")
        pairs.append((consume, None))
        if attempt == 1:
            echo("  COPY into a scratch table")
            copy_rows, copy_floor = ingest.copy_rates(settings, consumed)
            pairs += [(copy_floor, consume), (copy_rows, consume)]
        del consumed
        echo(f"  catch_up (pulsemart ingest --until-caught-up), round {attempt}")
        caught = ingest.catch_up_rate(settings, EVENTS_TOPIC)
        pairs.append(
            (
                replace(caught.measurement, name=f"{caught.measurement.name}, round {attempt}"),
                consume,
            )
        )
        busy = caught.read_seconds + caught.write_seconds
        # The raw step's own time summed over batches (from their metadata): what one worker
        # alone would take, since catch_up runs a batch per core side by side.
        landing = Measurement(
            f"one worker's landing rate: batches' read + write seconds summed, round {attempt}",
            caught.measurement.count,
            caught.measurement.bytes,
            busy,
            "records",
        )
        pairs.append((landing, consume))
        ratios.append(ratio(caught.measurement, consume))
        notes.append(
            f"Round {attempt}: catch_up ran {len(caught.batches)} batches (max_batch_events="
            f"{settings.max_batch_events:,}): {caught.read_seconds:.1f} s reading Kafka (including the empty "
            f"polls that end each partition's last batch), {caught.write_seconds:.1f} s writing (COPY + "
            f"offsets), summed over batches that ran one per core side by side, in "
            f"{caught.measurement.seconds:.1f} s wall. Records: produced {fmt_int(len(records))}, consumed "
            f"{fmt_int(consume.count)}, ingested {fmt_int(caught.measurement.count)}."
        )
    valid = [r for r in ratios if r is not None]
    worst = min(valid) if valid else None
    notes.insert(
        0,
        f"Target: ingest ≥ {INGEST_TARGET:.0%} of the raw consume rate. Measured per round: "
        f"{', '.join(fmt_ratio(r) for r in ratios)} — "
        f"{'met in every round' if worst is not None and worst >= INGEST_TARGET else 'NOT met in every round'}.",
    )
    return rate_table(pairs), notes, pairs


COMPRESSED = ("lz4", "zstd")  # the codecs shops' own producers favour; gzip and snappy decode too


def _compressed(
    settings: Settings, records: list, plain_anchor_rate: float | None, echo
) -> tuple[Table, list[str]]:
    """The same backlog produced compressed, read by the raw consumer (anchor) and by catch_up:
    decompression is paid by both, so the ratio shows what landing costs beside it."""
    pairs: list[tuple[Measurement, Measurement | None]] = []
    ratios, anchors = [], []
    for codec in COMPRESSED:
        echo(f"  {codec}-compressed backlog: raw consume, then catch_up")
        ingest.prepare_backlog(settings, len(records), 0, records=records, compression=codec)
        consume, consumed = ingest.raw_consume(settings, EVENTS_TOPIC)
        del consumed
        consume = replace(consume, name=f"{codec} topic: {consume.name}")
        caught = ingest.catch_up_rate(settings, EVENTS_TOPIC)
        pairs += [
            (consume, None),
            (
                replace(caught.measurement, name=f"{codec} topic: {caught.measurement.name}"),
                consume,
            ),
        ]
        ratios.append((codec, ratio(caught.measurement, consume)))
        anchors.append(
            f"{codec} {consume.count / consume.seconds:,.0f}" if consume.seconds else codec
        )
    met = all(r is not None and r >= INGEST_TARGET for _, r in ratios)
    measured = ", ".join(f"{codec} {fmt_ratio(r)}" for codec, r in ratios)
    note = (
        f"Compressed topics (the producer's `compression_type`; kafka-python 3 decodes with python-snappy, "
        f"lz4 and zstandard): catch_up / raw consume of the same topic: {measured} — target ≥ "
        f"{INGEST_TARGET:.0%}: {'met' if met else 'NOT met'}. The anchors' records/s: uncompressed "
        f"{plain_anchor_rate or 0:,.0f} (round 1 above), {', '.join(anchors)}: a compressed topic reaches "
        "the consumer in fewer, larger batches, so the anchor may read it faster, while landing (rows "
        "built in Python, COPY) costs the same per record."
    )
    return rate_table(pairs), [note]


def ingest_section(
    settings: Settings,
    command: str,
    n_events: int,
    seed: int,
    batch_sizes: list[int],
    latency_seconds: float,
    latency_rate: float,
    echo: Callable[[str], None],
    repeats: int = 2,
) -> Section:
    # Load the Dagster code location first: if it cannot load, fail before minutes of producing.
    from orchestration.streaming import defs  # noqa: F401

    echo(f"bench ingest: producing {n_events:,} simulated events to {EVENTS_TOPIC}")
    records = ingest.prepare_backlog(settings, n_events, seed)
    table, notes, table_pairs = _throughput(settings, repeats, records, echo)
    plain = next((m for m, anchor in table_pairs if anchor is None), None)
    codec_table, codec_notes = _compressed(
        settings, records, plain.count / plain.seconds if plain and plain.seconds else None, echo
    )
    tables = [table, codec_table]
    notes += codec_notes
    echo(f"  peak RSS per batch size {batch_sizes} over {len(records):,} events of lag")
    lag = memory.prepare_lag(settings, records)
    del records
    tables.append(_rss_table([memory.measure(size, lag) for size in [0, *batch_sizes]]))
    notes.append(
        "Peak RSS: one `ingest_batch` from offset 0 of a one-partition topic holding the whole lag, "
        "each size in a fresh child process printing its `ru_maxrss` (and VmHWM) at the end; growth "
        "is peak minus the resident size before the first read; batch size 0 is the baseline "
        "(imports, connections, no records)."
    )
    if latency_seconds > 0:
        echo(
            f"  end-to-end latency under pulsemart up: {latency_rate:g} events/s for {latency_seconds:g} s"
        )
        result = latency.measure(settings, latency_seconds, latency_rate)
        tables.append(latency_table(result))
        p95 = percentile(result.visible_s, 95)
        met = p95 is not None and p95 <= LATENCY_P95_TARGET_S
        notes.append(
            f"Latency: {fmt_int(result.produced)} events at {result.rate:g}/s, evenly paced, through "
            f"`pulsemart up --rate 0` (daemon sensor every {settings.sensor_interval_s} s, one run "
            f"process per batch); {fmt_int(result.seen)} seen in {len(result.batch_s)} ingest "
            f"batches. p95 target ≤ {LATENCY_P95_TARGET_S:.0f} s: {'met' if met else 'NOT met'}."
        )
    else:
        notes.append("End-to-end latency under `pulsemart up` was skipped (--latency-seconds 0).")
    return Section(
        key="ingest",
        title=f"Ingest: {fmt_int(n_events)} events, catch_up vs raw consume and COPY",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=(
            "All rows read the same backlog of simulated events on shop.events (4 partitions). The anchor "
            "is a bare kafka-python consumer with the reader's fetch settings, clocked to its last "
            "non-empty poll; COPY rows load the records that consumer read into a logged scratch table "
            "shaped like raw.events; catch_up is timed from call to return on an empty store."
        ),
        tables=tables,
        notes=notes,
    )


# Deciding (parse, detect, repair, score, explain) may cost at most four times bare schema
# validation of the same frames.
QUALITY_TARGET = 0.25


def quality_section(
    command: str, n_events: int, seed: int, replay_path: Path, echo: Callable[[str], None]
) -> Section:
    from pulsemart_bench import quality

    echo(f"bench quality: {n_events:,} simulated events (10% dirty), replay of {replay_path}")
    sim = quality.simulated(n_events, seed)
    sim_bare, sim_engine, _ = quality.engine_vs_pandera("simulated, 10% dirty", sim)
    echo("  scoring the simulator's decisions against its truth")
    scores = quality.simulator_scores(sim)
    real_bare, real_engine, _ = quality.engine_vs_pandera(
        "replayed Online Retail sample", quality.replayed(replay_path)
    )
    table = Table(["Measurement", "Events", "Seconds", "Events/s", "Anchor", "Ratio to anchor"])
    for measured, anchor in (
        (sim_bare, None),
        (sim_engine, sim_bare),
        (real_bare, None),
        (real_engine, real_bare),
    ):
        table.rows.append(
            [
                measured.name,
                fmt_int(measured.count),
                f"{measured.seconds:.2f}",
                fmt_int(measured.rate),
                anchor.name if anchor else "—",
                fmt_ratio(ratio(measured, anchor)) if anchor else "—",
            ]
        )
    score_table = Table(["Figure (simulator, in memory)", "Value", "Target"])
    for name, key, target in (
        ("detection recall", "detection_recall", "≥ 0.99"),
        ("repair precision (confidence ≥ fix threshold)", "repair_precision", "≥ 0.98"),
        ("clean events quarantined", "clean_quarantine_rate", "≤ 0.001"),
        ("expected calibration error", "ece", "≤ 0.05"),
    ):
        value = scores.get(key)
        score_table.rows.append(
            [name, f"{value:.4f}" if isinstance(value, float) else str(value), target]
        )
    notes = [
        (
            f"Target: engine at least {QUALITY_TARGET:.0%} of the bare Pandera rate. Measured: "
            f"{fmt_ratio(ratio(sim_engine, sim_bare))} on simulated events, "
            f"{fmt_ratio(ratio(real_engine, real_bare))} on the real sample (orders of ~19 lines)."
        )
    ]
    return Section(
        key="quality",
        title="Rule engine vs bare Pandera",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=(
            "In memory, batches of 10,000 with catalog, seen ids and held records carried between "
            "batches. The anchor validates the same contract frames with the same derived Pandera "
            "schemas (lazy); the engine does that and parses, detects, repairs, scores, decides and "
            "explains."
        ),
        tables=[table, score_table],
        notes=notes,
    )


FRESHNESS_P95_TARGET_S = 10.0


def serving_section(
    settings: Settings,
    command: str,
    n_events: int,
    seed: int,
    connections: int,
    seconds: float,
    single_seconds: float,
    freshness_seconds: float,
    freshness_rate: float,
    echo: Callable[[str], None],
    live_seconds: float = 20,
    profile_seconds: float = 0,
) -> Section:
    """The serving API under load: the live mix under `pulsemart up` (the headline), then the
    static mixes with and without the response cache; and produce → search freshness. The freshness test runs `pulsemart up`, which stops the embedded services on
    exit; they are started again so later sections find them."""
    from orchestration.streaming import defs  # noqa: F401  (fail before minutes of work)
    from pulsemart_bench import freshness, live_serving, serving
    from pulsemart_bench.serving_report import (
        api_notes,
        api_tables,
        live_notes,
        live_table,
        profile_table,
        roles_table,
        single_table,
    )

    tables, notes = [], []
    if live_seconds > 0:
        echo("bench serving: the live mix under pulsemart up")
        runs = live_serving.live_runs(
            settings,
            n_events,
            connections,
            live_seconds,
            seed,
            echo,
            profile_seconds=profile_seconds,
        )
        tables.append(live_table(runs))
        if (roles := roles_table(runs)) is not None:
            tables.append(roles)
        if (single := single_table(runs)) is not None:
            tables.append(single)
        if (profiled := profile_table(runs)) is not None:
            tables.append(profiled)
        notes.append(live_notes(runs, n_events, connections, live_seconds, serving.WORKERS))
    echo(f"bench serving: {n_events:,} simulated events (seed {seed}) through catch_up(serve=True)")
    data = serving.load_data(settings, n_events, seed)
    echo(f"  serving tables: {data.rows}")
    api = serving.api_load(settings, connections, seconds, single_seconds, seed, echo)
    tables += api_tables(api)
    notes += api_notes(data, api, seed, connections, seconds, single_seconds, serving.WRK)
    if freshness_seconds > 0:
        echo(
            f"  freshness under pulsemart up: {freshness_rate:g} price changes/s for {freshness_seconds:g} s"
        )
        try:
            # The sensor lane, so the figure stays comparable between runs of this section;
            # `bench realtime` has the real-time lane beside it.
            fresh = freshness.freshness(
                settings,
                freshness_seconds,
                freshness_rate,
                up_args=("--rate", "0", "--stream-workers", "0"),
            )
        except BaseException:
            try:
                freshness.restart_services(settings)
            except Exception as exc:  # noqa: BLE001 - the freshness failure is the one to raise
                echo(f"  could not restart the services: {exc}")
            raise
        freshness.restart_services(settings)  # `pulsemart up` stopped the services on exit
        p50, p95 = percentile(fresh.visible_s, 50), percentile(fresh.visible_s, 95)
        table = Table(["Measure", "Produced", "Seen", "p50 s", "p95 s", "max s", "Target"])
        table.rows.append(
            [
                "produce → new price visible in /products/search (poll every 0.2 s)",
                fmt_int(fresh.produced),
                fmt_int(fresh.seen),
                f"{p50:.2f}" if p50 is not None else "—",
                f"{p95:.2f}" if p95 is not None else "—",
                f"{max(fresh.visible_s):.2f}" if fresh.visible_s else "—",
                f"p95 ≤ {FRESHNESS_P95_TARGET_S:.0f} s",
            ]
        )
        for name, values in (
            ("produce → landed in raw.events (ingested_at: the row's write time)", fresh.landed_s),
            (
                "produce → decided into quality.events_clean (decided_at: transaction start)",
                fresh.decided_s,
            ),
        ):
            s50, s95 = percentile(values, 50), percentile(values, 95)
            table.rows.append(
                [
                    name,
                    fmt_int(fresh.produced),
                    fmt_int(len(values)),
                    f"{s50:.2f}" if s50 is not None else "—",
                    f"{s95:.2f}" if s95 is not None else "—",
                    f"{max(values):.2f}" if values else "—",
                    "",
                ]
            )
        tables.append(table)
        met = p95 is not None and p95 <= FRESHNESS_P95_TARGET_S and fresh.seen == fresh.produced
        notes.append(
            f"Freshness: `pulsemart up --rate 0 --stream-workers 0` (the sensor lane: daemon sensors every {settings.sensor_interval_s} s: ingest, "
            f"then one decide_and_serve run deciding and folding) in the temporary home; {fresh.products} probe "
            f"products upserted and waited for first (warm-up, not measured), then {fmt_int(fresh.produced)} "
            f"`price_changed` events at {fresh.rate:g}/s, evenly paced, the i-th setting product i mod "
            f"{fresh.products} to the unique price 1000 + i; produce time is taken just before `send`. "
            f"{fmt_int(fresh.seen)} of {fmt_int(fresh.produced)} seen"
            + (
                f" ({fresh.superseded} only through a later price of the same product, timed when that showed)"
                if fresh.superseded
                else ""
            )
            + f". p95 target ≤ {FRESHNESS_P95_TARGET_S:.0f} s: {'met' if met else 'NOT met'}."
        )
    else:
        notes.append("Freshness under `pulsemart up` was not measured (--freshness-seconds 0).")
    return Section(
        key="serving",
        title="Serving API under load, and produce → search freshness",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=(
            "The API as `pulsemart serve` runs it, a real uvicorn server, loaded by wrk from the same "
            "machine; the anchor is `GET /health` under the same load (framework, server and one `select 1` "
            "through the pool: the floor any route pays), and each endpoint's throughput is given as a "
            "ratio to it. The headline is the live mix: under `pulsemart up` with the trickle folding, "
            "over every known customer's recommendations and propensity and varied searches, with the "
            "response cache on as it is served. The static tables after it (nothing writes meanwhile) "
            "are secondary: without the cache they give each route's database path, with it the "
            "cache's ceiling."
        ),
        tables=tables,
        notes=notes,
    )
