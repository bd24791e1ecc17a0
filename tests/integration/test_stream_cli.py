"""`pulsemart simulate` and `pulsemart replay` against the real broker, counted by a consumer."""

import json
from collections import Counter

import pandas as pd
import pytest
from click.testing import CliRunner

from pulsemart.cli.main import cli
from tests.data import RETAIL_SAMPLE as SAMPLE
from tests.integration.helpers import read_topic

pytestmark = pytest.mark.integration


def all_records(settings):
    return read_topic(settings, "shop.events") + read_topic(settings, "shop.catalog")


def test_simulate_produces_exactly_n_events_deterministically(fresh_stream):
    result = CliRunner().invoke(cli, ["simulate", "--events", "10000", "--seed", "1"])
    assert result.exit_code == 0, result.output
    first = all_records(fresh_stream)
    assert len(first) == 10_000
    ids = Counter(json.loads(r.value)["event_id"] for r in first)
    assert len(ids) == 10_000  # clean run: no duplicates

    from pulsemart.stream.simulator import generate

    again = sorted(event.value for event in generate(10_000, seed=1))
    assert sorted(r.value for r in first) == again


def test_replay_carries_every_line_id_exactly_once(fresh_stream):
    result = CliRunner().invoke(cli, ["replay", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    events = [json.loads(r.value) for r in read_topic(fresh_stream, "shop.events")]
    source = pd.read_parquet(SAMPLE, columns=["InvoiceNo"])
    assert len(events) == source["InvoiceNo"].nunique()
    line_ids = Counter(line["line_id"] for event in events for line in event["lines"])
    assert len(line_ids) == len(source) == 240_007
    assert set(line_ids.values()) == {1}
    assert line_ids[f"{SAMPLE.stem}:0"] == 1 and line_ids[f"{SAMPLE.stem}:240006"] == 1


def test_replay_of_a_bad_file_names_the_file_and_the_problem(settings, tmp_path):
    bad = tmp_path / "orders.csv"
    bad.write_text("InvoiceNo,StockCode\n1,A\n")
    result = CliRunner().invoke(cli, ["replay", str(bad)])
    assert result.exit_code == 1
    assert "orders.csv" in result.output and "missing required column" in result.output
