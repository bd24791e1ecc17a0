"""Datamart build times: dbt full and incremental builds beside a bare COPY of the same rows.

The clean layer is written straight into `quality.*` by SQL (generate_series), so the figure
is the datamart's alone, not ingest's or the rule engine's. Orders have ten lines each, every
50th is a cancellation of the order before it, and products carry catalog upserts, so every
model (snapshot, netting, RFM, funnel) has real work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from pulsemart.config import Settings
from pulsemart.datamart.pii import apply_pii_key
from pulsemart.datamart.run import run_dbt
from pulsemart.store.db import connect_migrated
from pulsemart_bench.measure import Measurement

LINES_PER_ORDER = 10
PRODUCTS = 3_000
CUSTOMERS = 20_000

_BATCH = """
    insert into quality.batches (run_id, rule_set_version, records_in, accepted, fixed, quarantined,
                                 held, seconds)
    values ('bench datamart', 'bench', %(orders)s, %(orders)s, 0, 0, 0, 0) returning quality_batch_id
"""
_PRODUCTS = """
    insert into quality.events_clean (topic, "partition", "offset", event_id, event_type, event_time,
        product_id, payload, score, confidence, decision, rule_set_version, quality_batch_id)
    select 'shop.catalog', p %% 2, p, 'bench-product-' || p, 'product_upserted',
           timestamptz '2024-01-01' + p * interval '1 second', 'P' || p,
           jsonb_build_object('product_id', 'P' || p, 'description', 'product ' || p,
                              'category', (array['home', 'kitchen', 'party', 'garden', 'toys',
                                                 'stationery', 'lighting', 'gifts'])[1 + p %% 8],
                              'unit_price', round((1 + (p %% 97) / 7.0)::numeric, 2), 'source', 'bench'),
           1, 1, 'accepted', 'bench', %(batch)s
    from generate_series(0, %(products)s::int - 1) as p
"""
_ORDERS = """
    insert into quality.events_clean (topic, "partition", "offset", event_id, event_type, event_time,
        customer_id, payload, score, confidence, decision, rule_set_version, quality_batch_id)
    select 'shop.events', o %% 4, o, 'bench-order-' || o,
           case when o %% 50 = 0 then 'order_cancelled' else 'order_placed' end,
           timestamptz '2024-01-01' + o * interval '30 seconds', 'C' || (o %% %(customers)s::int),
           jsonb_build_object('order_id', 'O' || o, 'customer_id', 'C' || (o %% %(customers)s::int),
                              'session_id', 'S' || o, 'currency', 'GBP', 'source', 'bench',
                              'country', (array['United Kingdom', 'France', 'Germany', 'EIRE',
                                                'Spain'])[1 + o %% 5],
                              'cancels_order_id', case when o %% 50 = 0 then 'O' || (o - 1) end),
           1, 1, 'accepted', 'bench', %(batch)s
    from generate_series(%(first)s::bigint, %(last)s::bigint) as o
"""
_LINES = """
    insert into quality.order_lines_clean (topic, "partition", "offset", event_id, order_id, line_id,
        product_id, quantity_as_found, unit_price_as_found, quantity, unit_price, is_cancellation)
    select 'shop.events', o %% 4, o, 'bench-order-' || o, 'O' || o, l::text,
           'P' || ((case when o %% 50 = 0 then o - 1 else o end) * 7 + l * 13) %% %(products)s::int,
           q, price, q, price, o %% 50 = 0
    from generate_series(%(first)s::bigint, %(last)s::bigint) as o,
         generate_series(1, %(per_order)s::int) as l,
         lateral (select (case when o %% 50 = 0 then -1 else 1 end) * (1 + (o + l) %% 5) as q,
                         round((1 + ((o * 7 + l * 13) %% 97) / 7.0)::numeric, 2)::float8 as price) as v
"""


@dataclass(frozen=True)
class DatamartBench:
    copy_lines: Measurement
    copy_joined: Measurement
    full: Measurement
    incremental: Measurement
    noop: Measurement
    lines: int
    new_lines: int


def seed_orders(conn: psycopg.Connection, first: int, last: int, products: bool) -> int:
    """Write orders first..last (and the catalog once) as one quality batch; return lines written."""
    with conn.transaction():
        (batch,) = conn.execute(_BATCH, {"orders": last - first + 1}).fetchone()
        if products:
            conn.execute(_PRODUCTS, {"batch": batch, "products": PRODUCTS})
        params = {
            "batch": batch,
            "first": first,
            "last": last,
            "customers": CUSTOMERS,
            "products": PRODUCTS,
            "per_order": LINES_PER_ORDER,
        }
        conn.execute(_ORDERS, params)
        return conn.execute(_LINES, params).rowcount


def copy_out(conn: psycopg.Connection, query: str, name: str) -> Measurement:
    """The anchor: PostgreSQL writing the rows out with COPY, read to the end by the client."""
    started, size, rows = time.perf_counter(), 0, 0
    with conn.cursor() as cur, cur.copy(f"copy ({query}) to stdout") as copy:
        for chunk in copy:
            size += len(chunk)
            rows += bytes(chunk).count(b"\n")
    return Measurement(name, rows, size, time.perf_counter() - started, "lines")


def timed_build(settings: Settings, name: str, lines: int, args: list[str]) -> Measurement:
    started = time.perf_counter()
    run_dbt(settings, args, capture=True)
    return Measurement(name, lines, 0, time.perf_counter() - started, "lines")


def run(settings: Settings, lines: int, echo) -> DatamartBench:
    orders = max(lines // LINES_PER_ORDER, 1)
    new_orders = max(orders // 100, 1)
    with connect_migrated(settings) as conn:
        # A throw-away stack, but `bench all` runs other sections in it first: start empty.
        conn.execute("drop schema if exists marts, snapshots, staging, intermediate cascade")
        conn.execute(
            "truncate quality.events_clean, quality.order_lines_clean, quality.quarantine, "
            "quality.quarantine_lines, quality.held, quality.batches cascade"
        )
        conn.commit()
        apply_pii_key(conn, settings.pii_key)
        echo(f"  writing {orders * LINES_PER_ORDER:,} order lines into the clean layer")
        written = seed_orders(conn, 1, orders, products=True)
        conn.execute("analyze quality.events_clean")
        conn.execute("analyze quality.order_lines_clean")
        conn.commit()
        echo("  COPY … TO (anchor)")
        copy_lines = copy_out(
            conn,
            "select * from quality.order_lines_clean",
            "COPY quality.order_lines_clean TO STDOUT",
        )
        copy_joined = copy_out(
            conn,
            (
                "select l.*, e.event_time, e.customer_id, e.payload ->> 'country', e.decision, e.confidence "
                "from quality.order_lines_clean l join quality.events_clean e "
                'using (topic, "partition", "offset")'
            ),
            "COPY of the lines joined to their orders TO STDOUT",
        )
        conn.commit()
    echo("  dbt build (full: empty marts)")
    full = timed_build(settings, "dbt build, full (models, snapshot, tests)", written, ["build"])
    with connect_migrated(settings) as conn:
        added = seed_orders(conn, orders + 1, orders + new_orders, products=False)
    echo(f"  dbt build (incremental: {added:,} new lines)")
    incremental = timed_build(
        settings, f"dbt build, incremental (+{added:,} lines, 1%)", added, ["build"]
    )
    echo("  dbt build (nothing new)")
    noop = timed_build(settings, "dbt build, nothing new", 0, ["build"])
    return DatamartBench(copy_lines, copy_joined, full, incremental, noop, written, added)


def section(settings: Settings, command: str, lines: int, echo):
    """The `datamart` section of BENCHMARKS.md."""
    from pulsemart_bench import bulk_load, machine
    from pulsemart_bench.produce import DEFAULT_REPLAY_PATH
    from pulsemart_bench.report import Section, Table, rate_table

    echo(
        f"bench datamart: the committed extract replayed after a reset, then {lines:,} order lines"
    )
    bulk = bulk_load.run(settings, DEFAULT_REPLAY_PATH, echo)
    result = run(settings, lines, echo)
    after_load = Table(["Build", "Order lines", "Seconds", "Ratio to the anchor"])
    for build in (bulk.build_analyzed, bulk.build_after_load):
        after_load.rows.append(
            [
                build.name,
                f"{build.count:,}",
                f"{build.seconds:,.1f}",
                f"{build.seconds / bulk.build_analyzed.seconds:.2f}x",
            ]
        )
    times = Table(["Build", "Lines", "Seconds", "Share of the full build"])
    for build in (result.full, result.incremental, result.noop):
        times.rows.append(
            [
                build.name,
                f"{build.count:,}",
                f"{build.seconds:,.1f}",
                f"{build.seconds / result.full.seconds:.0%}",
            ]
        )
    return Section(
        key="datamart",
        title="Datamart: dbt builds vs a bare COPY of the same rows",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=(
            f"{result.lines:,} order lines ({LINES_PER_ORDER} per order, every 50th order a "
            f"cancellation, {PRODUCTS:,} products, {CUSTOMERS:,} customers) written straight into "
            "the clean layer; then `pulsemart datamart build` (dbt build: 18 models, the product "
            "snapshot, every data and unit test) on empty marts, again after 1% more lines in a new "
            "quality batch, and again with nothing new. The anchor is PostgreSQL writing the same "
            "lines out with `COPY … TO STDOUT`, read by the client."
        ),
        tables=[
            rate_table(
                [
                    (result.copy_lines, None),
                    (result.copy_joined, result.copy_lines),
                    (result.full, result.copy_lines),
                ]
            ),
            times,
            after_load,
        ],
        notes=[
            (
                f"After a bulk load: the committed Online Retail extract ({bulk.lines:,} clean "
                "order lines) is replayed, landed and decided; a Kappa reset then deletes it, the "
                "empty tables are analyzed (as autovacuum does after the deletes: the planner "
                "believes they hold no rows), and the replay from earliest is landed and decided "
                f"again ({bulk.replay.count:,} records in {bulk.replay.seconds:,.1f} s). The dbt "
                "build starts at once, on the statistics the load left (the decide pass analyzes "
                "a table once it has grown by a fifth, pulsemart.store.statistics); the anchor is "
                "the same build after an ANALYZE of every source table."
            ),
            (
                "Incremental models (the four facts, and the netting by touched customer and "
                "product) add only the new batch; the dimensions, aggregates and RFM are rebuilt "
                "whole, and every data test scans its whole table, which is what an incremental "
                "build's time is mostly made of."
            ),
        ],
    )
