"""Property-based fuzzing of the ingest and quality path over the event contracts.

Valid events of every contract (taken from the simulator) are mutated at random: a field
dropped, a value replaced by any JSON, an order line's field broken, the type switched, the
bytes truncated. Whatever arrives, the rule engine never raises, decides every record exactly
once and explains every quarantine; unmutated events are never quarantined. One property runs
the whole path (Kafka, raw.events, quality tables) on the embedded stack.
(Random bytes alone: tests/unit/quality/test_parse_and_conservation.py.)
"""

from __future__ import annotations

import json
import os
from functools import cache

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.contracts import EVENT_TYPES
from pulsemart.quality import CatalogState, run_batch
from pulsemart.store.contract_gate import conservation_gaps
from pulsemart.stream.simulator import generate
from tests.integration.helpers import produce_raw

NOW = pd.Timestamp("2026-11-26T12:00:00Z")
# CI explores the same examples every run (a red build means a regression, not a lucky draw);
# PULSEMART_FUZZ_EXAMPLES=N explores N fresh random examples per property instead.
EXPLORE = int(os.environ.get("PULSEMART_FUZZ_EXAMPLES", "0"))


def budget(default: int) -> dict:
    return {"max_examples": EXPLORE or default, "derandomize": not EXPLORE, "deadline": None}


SAMPLE = [json.loads(e.value) for e in generate(600, seed=41)]
CATALOG = [e for e in SAMPLE if e["event_type"] == "product_upserted"]
BY_TYPE = {t: [e for e in SAMPLE if e["event_type"] == t] for t in EVENT_TYPES}
SEEDS = [events[0] for events in BY_TYPE.values() if events]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw) -> bytes:
    event = json.loads(json.dumps(draw(st.sampled_from(SEEDS))))
    event["event_id"] = draw(st.uuids()).hex  # a fresh id, or the engine calls it a duplicate
    mutation = draw(st.sampled_from(["none", "drop", "replace", "line", "retype", "truncate"]))
    field = draw(st.sampled_from(sorted(event)))
    if mutation == "drop":
        event.pop(field)
    elif mutation == "replace":
        event[field] = draw(json_values)
    elif mutation == "line" and event.get("lines"):
        line = event["lines"][0]
        line[draw(st.sampled_from(sorted(line)))] = draw(json_values)
    elif mutation == "retype":
        event["event_type"] = draw(st.sampled_from([*EVENT_TYPES, "", "ORDER_PLACED"]))
    value = json.dumps(event, allow_nan=True).encode()
    if mutation == "truncate":
        value = value[: draw(st.integers(0, len(value)))]
    return value


def frame(values: list[bytes], start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "topic": "shop.events",
            "partition": 0,
            "offset": range(start, start + len(values)),
            "key": [None] * len(values),
            "value": values,
        }
    )


def assert_decided_and_explained(result, n: int) -> None:
    assert result.conservation["balanced"] and result.conservation["in"] == n
    offsets = sorted(
        [*result.clean["offset"], *result.quarantine["offset"], *result.held["offset"]]
    )
    assert offsets == list(range(n))
    for reasons in result.quarantine["reasons"]:
        reasons = json.loads(reasons)
        assert reasons and not any(r.startswith("engine_error") for r in reasons)
    assert result.clean["decision"].isin(["accepted", "fixed"]).all()
    assert (
        result.clean["confidence"].between(0, 1).all() and result.clean["score"].between(0, 1).all()
    )
    fixed = result.clean[result.clean["decision"] == "fixed"]
    assert all(json.loads(r) for r in fixed["repairs"])  # a fix always names its repairs


@cache
def catalog_state() -> CatalogState:  # run_batch never modifies the catalog it is given
    known = run_batch(frame([json.dumps(e).encode() for e in CATALOG]), CatalogState(), now=NOW)
    return known.catalog


@settings(**budget(150), suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=25))
def test_mutated_contract_events_are_always_decided_and_explained(values):
    result = run_batch(frame(values), catalog_state(), now=NOW)
    assert_decided_and_explained(result, len(values))


def test_unmutated_events_of_every_contract_are_released():
    values = [json.dumps(e).encode() for e in SAMPLE if e["event_type"] != "product_upserted"]
    result = run_batch(frame(values), catalog_state(), now=NOW)
    assert_decided_and_explained(result, len(values))
    assert len(result.quarantine) == 0 and len(result.held) == 0
    assert set(BY_TYPE) - {"product_upserted"} <= set(result.clean["event_type"]) | {
        t for t, events in BY_TYPE.items() if not events
    }


@pytest.mark.integration
@settings(
    **budget(6), suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(mutated(), min_size=20, max_size=60))
def test_mutated_events_through_kafka_and_postgres_are_stored_and_decided_once(
    fresh_stream, db, values
):
    db.rollback()
    before = db.execute("select count(*) from raw.events").fetchone()[0]
    produce_raw(fresh_stream, "shop.events", values)
    catch_up(fresh_stream, defs, ["shop.events"])
    assert db.execute("select count(*) from raw.events").fetchone()[0] == before + len(values)
    assert conservation_gaps(db).empty
    undecided = db.execute(
        'select count(*) from raw.events r left join quality.progress p using (topic, "partition") '
        'where r."offset" >= coalesce(p.next_offset, 0)'
    ).fetchone()[0]
    assert undecided == 0
    unexplained = db.execute(
        "select count(*) from quality.quarantine where jsonb_array_length(reasons) = 0 "
        "or reasons::text like '%engine_error%'"
    ).fetchone()[0]
    assert unexplained == 0
    db.rollback()
