"""Reading what the rule engine needs and storing what it decided, in one transaction.

`decide_new_records` is the quality layer's unit of work: under an advisory lock (so two runs
never decide the same records) it loads raw records past `quality.progress`, the records
still held, the catalog state and the event ids already decided; runs the engine; and writes
clean events, order lines, quarantine, held records, catalog state, rule counts and the new
progress together. A run killed half-way leaves nothing behind, and a rerun decides the same
records once.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import psycopg

from pulsemart.quality import CatalogState, EngineResult, quarantined_lines, run_batch
from pulsemart.store.rows import one_row
from pulsemart.store.statistics import analyze_grown

DECIDE_LOCK = 7_146_204  # advisory lock id: one quality batch at a time
# Catalog records first: an order in the same batch then finds the products it names.
_UNDECIDED_SQL = """
select r.topic, r."partition", r."offset", r.key, r.value
from raw.events r
left join quality.progress p on p.topic = r.topic and p."partition" = r."partition"
where r."offset" >= coalesce(p.next_offset, 0)
order by r.topic <> 'shop.catalog', r.topic, r."partition", r."offset"
limit %s
"""


@dataclass(frozen=True)
class DecidedBatch:
    quality_batch_id: int | None
    result: EngineResult | None
    seconds: float
    new_records: int = 0  # raw records decided for the first time (the rest were held before)


def query_frame(conn: psycopg.Connection, sql: str, params=()) -> pd.DataFrame:
    """A query's rows as a frame of plain Python values (object columns)."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return pd.DataFrame(
            cur.fetchall(), columns=[c.name for c in cur.description or ()], dtype=object
        )


def raw_records(conn: psycopg.Connection, sql: str, params=()) -> pd.DataFrame:
    """Raw records for the engine: keys and values as bytes (the driver gives memoryviews)."""
    frame = query_frame(conn, sql, params)
    for column in ("key", "value"):
        frame[column] = [bytes(v) if v is not None else None for v in frame[column]]
    return frame


def load_undecided(conn: psycopg.Connection, limit: int) -> pd.DataFrame:
    return raw_records(conn, _UNDECIDED_SQL, (limit,))


def load_held(conn: psycopg.Connection) -> pd.DataFrame:
    return raw_records(
        conn,
        """
        select r.topic, r."partition", r."offset", r.key, r.value, h.first_held_at
        from quality.held h join raw.events r using (topic, "partition", "offset")
        order by h.topic, h."partition", h."offset"
    """,
    )


def load_catalog(conn: psycopg.Connection) -> CatalogState:
    return CatalogState.from_records(
        row[0] for row in conn.execute("select state from quality.catalog_state")
    )


def seen_ids(conn: psycopg.Connection, include_quarantine: bool = True):
    """The engine's dedup lookup: which of these event ids were decided before (released or,
    unless a quarantine replay asks, quarantined), so a copy arriving in a later batch is a
    duplicate, not a new event."""
    sql = "select event_id from quality.events_clean where event_id = any(%(ids)s)"
    if include_quarantine:
        # A copy quarantined as a duplicate does not make its original a duplicate: the
        # original may still be held, waiting for the catalog, and must be decided on its own.
        sql += (
            " union select event_id from quality.quarantine where event_id = any(%(ids)s)"
            " and not reasons ? 'duplicate'"
        )

    def lookup(ids: list[str]) -> set[str]:
        return {row[0] for row in conn.execute(sql, {"ids": list(ids)})}

    return lookup


def decide_new_records(
    conn: psycopg.Connection,
    limit: int = 50_000,
    run_id: str | None = None,
    now=None,
    include_held: bool = True,
) -> DecidedBatch:
    """Decide up to `limit` undecided raw records (and, with `include_held`, every held one);
    store the outcome. Held records wait for products the catalog does not know yet, so a
    caller deciding many passes in a row re-decides them once, after the last pass."""
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (DECIDE_LOCK,))
        raw = load_undecided(conn, limit)
        held = load_held(conn) if include_held else None
        if raw.empty and (held is None or held.empty):
            return DecidedBatch(None, None, time.perf_counter() - started)
        result = run_batch(raw, load_catalog(conn), seen_ids(conn), now=now, pending=held)
        seconds = time.perf_counter() - started
        batch_id = _store(conn, result, raw, run_id, seconds)
    return DecidedBatch(batch_id, result, time.perf_counter() - started, len(raw))


def decide_until_done(
    conn: psycopg.Connection,
    limit: int,
    run_id: str | None,
    on_batch: Callable[[DecidedBatch], None],
) -> None:
    """Bounded passes until every stored raw record is decided, then one pass that decides
    the held records again, when the catalog knows the most. `on_batch` sees each pass."""
    while (batch := decide_new_records(conn, limit, run_id, include_held=False)).result is not None:
        on_batch(batch)
    final = decide_new_records(conn, limit, run_id, include_held=True)
    if final.result is not None:
        on_batch(final)


def _store(
    conn: psycopg.Connection, result: EngineResult, raw: pd.DataFrame, run_id, seconds
) -> int:
    c = result.conservation
    (batch_id,) = one_row(
        conn.execute(
            "insert into quality.batches (run_id, rule_set_version, records_in, accepted, fixed, "
            "quarantined, held, seconds) values (%s, %s, %s, %s, %s, %s, %s, %s) returning quality_batch_id",
            (
                run_id,
                result.rule_set_version,
                c["in"],
                c["accepted"],
                c["fixed"],
                c["quarantined"],
                c["held"],
                seconds,
            ),
        )
    )
    copy_clean(conn, result.clean, batch_id)
    copy_order_lines(conn, result.order_lines, result.clean)
    _copy_quarantine(conn, result.quarantine, batch_id)
    if result.conservation["in"] > len(raw):  # held records were re-decided: replace them all
        conn.execute("delete from quality.held")
    _copy(
        conn,
        "quality.held",
        ["topic", "partition", "offset", "event_id", "reasons", "first_held_at"],
        result.held.itertuples(index=False),
        lambda h: (h.topic, h.partition, h.offset, h.event_id, h.reasons, h.first_held_at),
    )
    _save_catalog(conn, result.catalog)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into quality.rule_runs (quality_batch_id, rule_id, decision, records) values (%s, %s, %s, %s)",
            [
                (batch_id, r.rule_id, r.decision, int(r.records))
                for r in result.rule_counts.itertuples()
            ],
        )
    _advance_progress(conn, raw)
    analyze_grown(
        conn,
        {
            "raw.events": len(raw),
            "quality.events_clean": len(result.clean),
            "quality.order_lines_clean": len(result.order_lines),
            "quality.quarantine": len(result.quarantine),
        },
    )
    return batch_id


def _copy(conn, table: str, columns: list[str], rows, to_tuple) -> None:
    names = psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c) for c in columns)
    schema, name = table.split(".")
    statement = psycopg.sql.SQL("copy {}.{} ({}) from stdin").format(
        psycopg.sql.Identifier(schema), psycopg.sql.Identifier(name), names
    )
    rows = list(rows)  # written twice if the first attempt meets a NUL
    try:
        with conn.transaction():  # a savepoint, so a refused row does not abort the pass
            _write(conn, statement, rows, to_tuple)
    except (psycopg.errors.UntranslatableCharacter, psycopg.errors.CharacterNotInRepertoire):
        # PostgreSQL text and jsonb cannot hold NUL (U+0000), which JSON may carry in any
        # string. Rare, so only then is every value checked: NUL becomes U+FFFD in the decision
        # tables, and the raw record keeps the bytes as they came.
        _write(conn, statement, rows, lambda row: tuple(_without_nul(v) for v in to_tuple(row)))


def _write(conn, statement, rows: list, to_tuple) -> None:
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(to_tuple(row))


# A JSON escape of NUL that is not itself an escaped backslash followed by "u0000".
_ESCAPED_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _without_nul(value):
    if not isinstance(value, str):
        return value
    if "\\u0000" in value:
        value = _ESCAPED_NUL.sub(lambda m: m.group(1) + "\\ufffd", value)
    return value.replace("\x00", "\ufffd")


def _as_found(value):
    """A quarantined record's field for a text column, whatever it held: a list or object where
    an id belongs (found by the fuzzer) is kept as its JSON text."""
    value = _none(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, default=str)


def _json_value(value) -> str:
    """A value as found (any JSON, or NaN from a frame) as jsonb text: NaN and infinities,
    which JSON cannot hold, become their names as strings."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(str(value))


def _none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def copy_clean(conn, clean: pd.DataFrame, batch_id: int) -> None:
    columns = [
        "topic",
        "partition",
        "offset",
        "event_id",
        "event_type",
        "event_time",
        "customer_id",
        "product_id",
        "payload",
        "score",
        "confidence",
        "decision",
        "repairs",
        "flags",
        "rule_set_version",
        "quality_batch_id",
    ]
    times = [None if pd.isna(t) else t.to_pydatetime() for t in clean["event_time"]]
    _copy(
        conn,
        "quality.events_clean",
        columns,
        zip(clean.itertuples(index=False), times, strict=True),
        lambda pair: (
            pair[0].topic,
            pair[0].partition,
            pair[0].offset,
            pair[0].event_id,
            pair[0].event_type,
            pair[1],
            pair[0].customer_id,
            pair[0].product_id,
            pair[0].payload,
            pair[0].score,
            pair[0].confidence,
            pair[0].decision,
            pair[0].repairs,
            pair[0].flags,
            pair[0].rule_set_version,
            batch_id,
        ),
    )


def copy_order_lines(conn, lines: pd.DataFrame, clean: pd.DataFrame) -> None:
    if lines.empty:
        return
    source = clean.set_index("event_id")[["topic", "partition", "offset"]]
    source = source[~source.index.duplicated()]
    located = lines.join(source, on="event_id")
    columns = [
        "topic",
        "partition",
        "offset",
        "event_id",
        "order_id",
        "line_id",
        "product_id",
        "quantity_as_found",
        "quantity_as_found_text",
        "unit_price_as_found",
        "unit_price_as_found_text",
        "quantity",
        "unit_price",
        "is_cancellation",
        "flags",
    ]
    _copy(
        conn,
        "quality.order_lines_clean",
        columns,
        located.itertuples(index=False),
        lambda r: tuple(_none(getattr(r, c)) for c in columns),
    )


def _copy_quarantine(conn, quarantine: pd.DataFrame, batch_id: int) -> None:
    columns = [
        "topic",
        "partition",
        "offset",
        "event_id",
        "event_type",
        "payload",
        "payload_encoding",
        "reasons",
        "explanation",
        "score",
        "confidence",
        "rule_set_version",
        "quarantined_at",
        "quality_batch_id",
    ]
    _copy(
        conn,
        "quality.quarantine",
        columns,
        quarantine.itertuples(index=False),
        lambda q: (
            *(
                _as_found(getattr(q, c))
                if c in ("event_id", "event_type", "payload")
                else _none(getattr(q, c))
                for c in columns[:-1]
            ),
            batch_id,
        ),
    )
    lines = quarantined_lines(quarantine)
    _copy(
        conn,
        "quality.quarantine_lines",
        [
            "topic",
            "partition",
            "offset",
            "event_id",
            "line_id",
            "product_id",
            "quantity",
            "unit_price",
        ],
        lines.itertuples(index=False),
        lambda r: (
            r.topic,
            r.partition,
            r.offset,
            _as_found(r.event_id),
            _as_found(r.line_id),
            _as_found(r.product_id),
            _json_value(r.quantity),
            _json_value(r.unit_price),
        ),
    )


def _save_catalog(conn, catalog: CatalogState) -> None:
    conn.execute("delete from quality.catalog_state")
    # Unknown attributes may arrive as NaN, which JSON (and jsonb) cannot hold: stored as null.
    _copy(
        conn,
        "quality.catalog_state",
        ["product_id", "state"],
        catalog.to_records(),
        lambda p: (
            p["product_id"],
            json.dumps({k: _none(v) for k, v in p.items()}, allow_nan=False),
        ),
    )


def _advance_progress(conn, raw: pd.DataFrame) -> None:
    if raw.empty:
        return
    ends = raw.groupby(["topic", "partition"])["offset"].max()
    with conn.cursor() as cur:
        cur.executemany(
            'insert into quality.progress (topic, "partition", next_offset) values (%s, %s, %s) '
            'on conflict (topic, "partition") do update set next_offset = excluded.next_offset',
            [
                (topic, int(partition), int(offset) + 1)
                for (topic, partition), offset in ends.items()
            ],
        )


def waiting_for_decision(conn: psycopg.Connection, hold_timeout_s: float) -> tuple[int, int]:
    """(raw records not yet decided, held records past their timeout): what a quality run
    would have to do now. Cheap enough for a sensor tick."""
    (undecided,) = one_row(
        conn.execute("""
        select coalesce(sum(greatest(o.next_offset - coalesce(p.next_offset, 0), 0)), 0)
        from ingest.offsets o
        left join quality.progress p on p.topic = o.topic and p."partition" = o."partition"
    """)
    )
    (expired,) = one_row(
        conn.execute(
            "select count(*) from quality.held where first_held_at < now() - make_interval(secs => %s)",
            (hold_timeout_s,),
        )
    )
    return int(undecided), int(expired)
