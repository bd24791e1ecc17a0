"""Bad bytes never raise; every record gets exactly one decision with an explanation."""

import json

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulsemart.quality import CatalogState, run_batch
from tests.unit.quality.conftest import NOW, decide, only, order, product, view

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=10),
        "event_type": st.sampled_from(["product_viewed", "order_placed", "price_changed", "nope"]),
    },
    optional={
        "event_time": json_values,
        "unit_price": json_values,
        "lines": json_values,
        "product_id": json_values,
        "customer_id": json_values,
        "quantity": json_values,
    },
)
values = st.one_of(
    st.none(),
    st.binary(max_size=60),
    json_values.map(lambda v: json.dumps(v).encode()),
    event_like.map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, max_size=12))
def test_random_bytes_always_decided_and_explained(batch):
    frame = pd.DataFrame(
        {
            "topic": "shop.events",
            "partition": 0,
            "offset": range(len(batch)),
            "key": [None] * len(batch),
            "value": batch,
        }
    )
    result = run_batch(frame, CatalogState(), now=NOW)
    c = result.conservation
    assert c["balanced"] and c["in"] == len(batch)
    assert len(result.clean) + len(result.quarantine) + len(result.held) == len(batch)
    offsets = (
        list(result.clean["offset"])
        + list(result.quarantine["offset"])
        + list(result.held["offset"])
    )
    assert sorted(offsets) == list(range(len(batch)))
    for reasons in result.quarantine["reasons"]:
        assert json.loads(reasons)  # never quarantined without a reason
        assert not any(r.startswith("engine_error") for r in json.loads(reasons))


def test_parse_failures_have_explicit_reasons():
    result = decide(
        b"{not json",
        b"\xff\xfe",
        b"[1,2]",
        b'{"event_type":"x","event_id":"1"}',
        b'{"event_type":"product_viewed"}',
        None,
        b"",
        b'{"event_id":"big","event_type":"product_viewed","q":"' + b"x" * (2**20) + b'"}',
    )
    reasons = [json.loads(r) for r in result.quarantine["reasons"]]
    assert reasons == [
        ["malformed_json"],
        ["not_utf8"],
        ["not_an_object"],
        ["unknown_event_type"],
        ["invalid_event_id"],
        ["tombstone"],
        ["empty_value"],
        ["oversized_payload"],
    ]
    assert list(result.quarantine["payload_encoding"])[:2] == ["utf-8", "base64"]
    assert result.quarantine["event_id"].iloc[-1] == "big"  # sniffed from the raw text


def test_empty_batch():
    result = run_batch(
        pd.DataFrame(columns=["topic", "partition", "offset", "key", "value"]),
        CatalogState(),
        now=NOW,
    )
    assert result.conservation == {
        "in": 0,
        "accepted": 0,
        "fixed": 0,
        "quarantined": 0,
        "held": 0,
        "balanced": True,
    }


def test_engine_does_not_mutate_the_given_catalog(catalog):
    before = catalog.to_records()
    decide(view(price=3.0), catalog=catalog)
    assert catalog.to_records() == before


def test_rule_counts_name_rule_and_decision(catalog):
    result = decide(view(event_time="12/1/24 8:26"), catalog=catalog)
    assert result.rule_counts.to_dict("records") == [
        {"rule_id": "time.format", "decision": "fixed", "records": 1}
    ]
    assert only(result)[0] == "fixed"


def test_a_defect_in_a_rule_quarantines_the_batch_instead_of_raising(catalog):
    import dataclasses

    from pulsemart.quality import load_rules
    from pulsemart.quality.detectors import DETECTORS
    from pulsemart.quality.rules import Rule, Step

    def broken(frame, field, ctx):
        raise RuntimeError("bug")

    DETECTORS["broken_for_test"] = broken
    try:
        rules = load_rules()
        rules = dataclasses.replace(
            rules,
            rules=rules.rules
            + (
                Rule(
                    "test.broken",
                    "d",
                    ("product_viewed",),
                    ("unit_price",),
                    Step("broken_for_test"),
                ),
            ),
        )
        result = decide(view(), catalog=catalog, rules=rules)
    finally:
        del DETECTORS["broken_for_test"]
    decision, row = only(result)
    assert decision == "quarantined"
    assert json.loads(row["reasons"]) == ["engine_error:RuntimeError"]
    assert result.conservation["balanced"]


def test_mutated_simulator_events_are_all_decided_without_engine_errors():
    import random
    from types import SimpleNamespace

    from pulsemart_bench.simcheck import run_stream

    from pulsemart.stream.simulator import generate

    junk = [
        None,
        True,
        0,
        -1,
        1.5,
        1e308,
        "",
        " ",
        "x" * 300,
        [],
        [1],
        {},
        {"a": 1},
        "£",
        "12/1/10 8:26",
        "P00001",
        [{}],
        [{"line_id": "a"}],
        "Infinity",
        -0.0,
        10**30,
        ["a", 1],
        "'; drop table x; --",
    ]
    rng = random.Random(7)
    records = []
    for sim in generate(1500, seed=3):
        event = json.loads(sim.value)
        for _ in range(rng.randrange(4)):
            name = rng.choice(list(event))
            if (
                name == "lines"
                and isinstance(event[name], list)
                and event[name]
                and isinstance(event[name][0], dict)
                and rng.random() < 0.7
            ):
                line = rng.choice(event[name])
                line[rng.choice([*line, "extra"])] = rng.choice(junk)
            else:
                event[name] = rng.choice(junk)
        records.append(
            SimpleNamespace(topic=sim.topic, key=sim.key, value=json.dumps(event).encode())
        )
    results, _ = run_stream(records, batch_size=400, now=NOW)
    assert all(r.conservation["balanced"] for r in results)
    decided = sum(len(r.clean) + len(r.quarantine) for r in results) + len(results[-1].held)
    assert decided == len(records)
    assert not any("engine_error" in text for r in results for text in r.quarantine["reasons"])


def test_a_list_where_a_scalar_belongs_quarantines_only_its_record():
    # Found by tests/reliability/test_fuzz.py: Pandera's hashing checks raised on `[]` and the
    # engine quarantined the whole batch as an engine error.
    bad = order(
        "bad", lines=[{"line_id": [], "product_id": "P00001", "quantity": 1, "unit_price": 2.55}]
    )
    result = decide(product(), view("ok"), bad)
    assert "ok" in set(result.clean["event_id"])
    assert list(result.quarantine["event_id"]) == ["bad"]
    assert json.loads(result.quarantine["reasons"].iloc[0]) == [
        "contract:order_placed.lines:line_id:dtype(int)"
    ]
