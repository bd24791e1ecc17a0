"""`run_batch`: one micro-batch of raw records in, one decision per record out.

Pure and in memory: no database, no Kafka, no Dagster. The caller passes the catalog state,
the event ids decided in earlier batches and the records still held, and stores what comes
back (see docs/quality.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import cache

import pandas as pd

from pulsemart.quality.catalog import CatalogState
from pulsemart.quality.context import BatchContext
from pulsemart.quality.contract_check import FAILURE_COLUMNS, check_events, check_lines
from pulsemart.quality.decide import QUARANTINED, decide
from pulsemart.quality.learn import update_catalog
from pulsemart.quality.parse import parse_values
from pulsemart.quality.result import EngineResult, assemble
from pulsemart.quality.rules import RuleSet, load_rules
from pulsemart.quality.runner import FINDING_COLUMNS, run_rules

RAW_COLUMNS = ["topic", "partition", "offset", "key", "value"]
SeenIds = Collection[str] | Callable[[list[str]], Collection[str]] | None


@cache
def default_rules() -> RuleSet:
    return load_rules()


def run_batch(
    raw: pd.DataFrame,
    catalog: CatalogState | None = None,
    seen_event_ids: SeenIds = None,
    now=None,
    pending: pd.DataFrame | None = None,
    rules: RuleSet | None = None,
) -> EngineResult:
    """Decide every record of `raw` (and of `pending`, the records held earlier).

    raw: columns topic, partition, offset, key (bytes|None), value (bytes|None).
    catalog: products known before this batch (not modified; the result has the new state).
    seen_event_ids: ids decided in earlier batches, as a set or a function that returns the
        seen subset of a list of ids (e.g. one SQL query).
    now: the clock for future timestamps and hold timeouts (default: the current time).
    pending: the `held` frame of an earlier result (raw columns plus first_held_at).
    """
    rules = rules or default_rules()
    catalog = catalog or CatalogState()
    now = _utc(now)
    records = _records(raw, pending)
    try:
        return _run(records, catalog, seen_event_ids, now, rules)
    except Exception as error:  # noqa: BLE001 - a defect must not lose or stop a batch
        return _engine_failure(records, catalog, now, rules, error)


def _run(records, catalog, seen_event_ids, now, rules) -> EngineResult:
    parsed = parse_values(records["value"].tolist(), rules.settings.max_payload_bytes)
    early = {i: [r] for i, r in enumerate(parsed.reasons) if r is not None}
    ok_rows = [i for i, r in enumerate(parsed.reasons) if r is None]
    ids = pd.Series([parsed.event_ids[i] for i in ok_rows], index=ok_rows, dtype=object)
    dup = ids.duplicated(keep="first") | ids.isin(_seen(seen_event_ids, ids))
    for i in ids.index[dup.to_numpy()]:
        early[i] = ["duplicate"]
    live = ids.index[~dup.to_numpy()]

    events = pd.DataFrame([parsed.events[i] for i in live], index=live, dtype=object)
    if events.empty:
        events = pd.DataFrame(columns=["event_type"], index=live, dtype=object)
    events["_event_type"] = events["event_type"]
    events.attrs["scope"] = "event"
    ctx = BatchContext(
        now=now,
        settings=rules.settings,
        catalog=catalog,
        known_products=_known(catalog, events),
        keys=records.loc[live, "key"].map(_key_text),
        coordinates=records.loc[live, ["topic", "partition", "offset"]],
        events=events,
    )
    event_exempt: dict = {}
    found = [run_rules(events, rules.rules, ctx, "event", event_exempt)]
    lines = line_frame(events)
    as_found = lines.reindex(columns=["quantity", "unit_price"]).astype(object)
    line_exempt: dict = {}
    marks: list = []
    found.append(run_rules(lines, rules.rules, ctx, "line", line_exempt, marks))
    findings = pd.concat(
        [f for f in found if len(f)] or [pd.DataFrame(columns=FINDING_COLUMNS)], ignore_index=True
    )
    failures = pd.concat([check_events(events), check_lines(lines, line_exempt)], ignore_index=True)
    decisions = decide(live, findings, failures, records["first_held_at"], now, rules)
    if early:
        rows = sorted(early)
        decisions = pd.concat(
            [
                decisions,
                pd.DataFrame(
                    {
                        "decision": QUARANTINED,
                        "score": 0.0,
                        "confidence": 0.0,
                        "reasons": [early[i] for i in rows],
                    },
                    index=rows,
                ),
            ]
        )
    decisions = decisions.sort_index()
    new_catalog = update_catalog(
        catalog, events, lines, decisions, findings, line_exempt, rules.settings
    )
    return assemble(
        records,
        parsed,
        events,
        lines,
        as_found,
        findings,
        failures,
        decisions,
        new_catalog,
        now,
        rules,
        marks,
    )


def _engine_failure(records, catalog, now, rules, error) -> EngineResult:
    """Every record quarantined with the defect named, so nothing is lost and a replay after
    the fix decides them again."""
    parsed = parse_values(records["value"].tolist(), rules.settings.max_payload_bytes)
    reason = f"engine_error:{type(error).__name__}"
    decisions = pd.DataFrame(
        {
            "decision": QUARANTINED,
            "score": 0.0,
            "confidence": 0.0,
            "reasons": [[reason] for _ in range(len(records))],
        },
        index=records.index,
    )
    events = pd.DataFrame(columns=["event_type", "_event_type"], dtype=object)
    lines = line_frame(events)
    return assemble(
        records,
        parsed,
        events,
        lines,
        None,
        pd.DataFrame(columns=FINDING_COLUMNS),
        pd.DataFrame(columns=FAILURE_COLUMNS),
        decisions,
        catalog.copy(),
        now,
        rules,
    )


def line_frame(events: pd.DataFrame) -> pd.DataFrame:
    """One row per order line (dict) of the order events, with its event row and position."""
    rows = []
    if "lines" in events.columns:
        orders = events[events["_event_type"].isin(("order_placed", "order_cancelled"))]
        for row, event_id, event_type, lines in zip(
            orders.index, orders["event_id"], orders["_event_type"], orders["lines"], strict=True
        ):
            if not isinstance(lines, list):
                continue
            for pos, line in enumerate(lines):
                if isinstance(line, dict):
                    rows.append(
                        {
                            **line,
                            "_row": row,
                            "_pos": pos,
                            "_event_type": event_type,
                            "event_id": event_id,
                        }
                    )
    frame = pd.DataFrame(rows, dtype=object)
    if frame.empty:
        frame = pd.DataFrame(
            columns=[
                "_row",
                "_pos",
                "_event_type",
                "event_id",
                "quantity",
                "unit_price",
                "product_id",
                "line_id",
            ],
            dtype=object,
        )
    frame.attrs["scope"] = "line"
    return frame


def _records(raw: pd.DataFrame, pending: pd.DataFrame | None) -> pd.DataFrame:
    parts = []
    if pending is not None and len(pending):
        parts.append(pending[RAW_COLUMNS + ["first_held_at"]])
    fresh = raw[RAW_COLUMNS].copy()
    fresh["first_held_at"] = pd.NaT
    parts.append(fresh)
    records = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    records = records.reset_index(drop=True)
    records["first_held_at"] = pd.to_datetime(records["first_held_at"], utc=True)
    return records


def _seen(seen: SeenIds, ids: pd.Series) -> Collection[str]:
    if seen is None or ids.empty:
        return ()
    if callable(seen):
        return set(seen(ids.dropna().unique().tolist()))
    return seen


def _known(catalog: CatalogState, events: pd.DataFrame) -> set:
    known = set(catalog.products)
    if "product_id" in events.columns:
        upserts = events.loc[events["_event_type"] == "product_upserted", "product_id"]
        known.update(v for v in upserts if isinstance(v, str))
    return known


def _key_text(key):
    if isinstance(key, memoryview):
        key = key.tobytes()
    if isinstance(key, (bytes, bytearray)):
        try:
            return bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return key if isinstance(key, str) else None


def _utc(now) -> pd.Timestamp:
    moment = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


__all__ = ["RAW_COLUMNS", "line_frame", "run_batch"]
