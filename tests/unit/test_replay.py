"""Replay of Online Retail transaction files: loading, event building, bad input, CLI errors."""

from __future__ import annotations

import json
import math
import sys
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsemart.cli.replay import replay
from pulsemart.config import CATALOG_TOPIC, EVENTS_TOPIC
from pulsemart.stream.replay import (
    REPLAY_NAMESPACE,
    ReplayInputError,
    ReplaySummary,
    build_events,
    load_transactions,
    replay_events,
)
from tests.data import RETAIL_SAMPLE as SAMPLE

# Six rows with the dirt the real file has: invoice 536365 and 536366 are not contiguous, a
# missing description, missing customers, a cancellation and a row without an invoice number.
ROWS = [
    # invoice, stock, description, qty, date (v1), date (v2), price, customer, country
    (
        "536365",
        "85123A",
        "WHITE HANGING HEART",
        6,
        "12/1/10 8:26",
        "2009-12-01 08:26:00",
        2.55,
        17850.0,
        "United Kingdom",
    ),
    (
        "536366",
        "22633",
        "HAND WARMER UNION JACK",
        6,
        "12/1/10 8:28",
        "2009-12-01 08:28:00",
        1.85,
        np.nan,
        "United Kingdom",
    ),
    (
        "536365",
        "71053",
        None,
        6,
        "12/1/10 8:26",
        "2009-12-01 08:26:00",
        3.39,
        17850.0,
        "United Kingdom",
    ),
    (
        "C536379",
        "D",
        "Discount",
        -1,
        "12/1/10 9:41",
        "2009-12-01 09:41:00",
        27.5,
        14527.0,
        "France",
    ),
    (
        None,
        "22139",
        None,
        56,
        "12/1/10 11:52",
        "2009-12-01 11:52:00",
        0.0,
        np.nan,
        "United Kingdom",
    ),
    (
        "536366",
        "85123A",
        "WHITE HANGING HEART",
        2,
        "12/1/10 8:28",
        "2009-12-01 08:28:00",
        2.55,
        np.nan,
        "United Kingdom",
    ),
]
V1 = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
V2 = [
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
]


def layout_frame(layout: str) -> pd.DataFrame:
    date = 4 if layout == "v1" else 5
    records = [(r[0], r[1], r[2], r[3], r[date], r[6], r[7], r[8]) for r in ROWS]
    return pd.DataFrame(records, columns=V1 if layout == "v1" else V2)


def write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def decoded(events) -> list[tuple[str, str | None, dict]]:
    return [(e.topic, e.key, json.loads(e.value)) for e in events]


def orders_of(events) -> list[dict]:
    return [doc for topic, _, doc in decoded(events) if topic == EVENTS_TOPIC]


# --- loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_csv_xlsx_and_parquet_of_one_layout_load_identically(tmp_path, layout):
    frame = layout_frame(layout)
    loaded = [
        load_transactions(write(frame, tmp_path / kind / f"shop.{kind}"))
        for kind in ("csv", "xlsx", "parquet")
    ]
    for other in loaded[1:]:
        pd.testing.assert_frame_equal(loaded[0], other)
    first = loaded[0]
    assert first["line_id"].tolist() == [f"shop:{i}" for i in range(len(ROWS))]
    assert first["customer_id"].tolist() == ["17850", None, "17850", "14527", None, None]
    assert first["invoice"].tolist()[4] is None
    assert first["description"].tolist()[2] is None
    assert first["quantity"].tolist() == [6, 6, 6, -1, 56, 2]


def test_both_layouts_load_to_the_same_columns_with_dates_as_found(tmp_path):
    v1 = load_transactions(write(layout_frame("v1"), tmp_path / "a" / "shop.csv"))
    v2 = load_transactions(write(layout_frame("v2"), tmp_path / "b" / "shop.csv"))
    assert v1["invoice_date"][0] == "12/1/10 8:26"
    assert v2["invoice_date"][0] == "2009-12-01 08:26:00"
    pd.testing.assert_frame_equal(v1.drop(columns="invoice_date"), v2.drop(columns="invoice_date"))


def test_excel_datetimes_and_numeric_codes_render_as_the_text_a_csv_holds(tmp_path):
    # The published Online Retail II workbook stores real datetimes and numeric invoices.
    frame = layout_frame("v2")
    as_text = load_transactions(write(frame, tmp_path / "a" / "shop.csv"))
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    frame["StockCode"] = [85123 if c == "85123A" else c for c in frame["StockCode"]]
    frame["Invoice"] = [
        int(i) if isinstance(i, str) and i.isdigit() else i for i in frame["Invoice"]
    ]
    typed = load_transactions(write(frame, tmp_path / "b" / "shop.xlsx"))
    assert typed["invoice_date"].tolist() == as_text["invoice_date"].tolist()
    assert typed["invoice"].tolist() == as_text["invoice"].tolist()
    assert typed["stock_code"][0] == "85123"


def test_values_pass_through_and_what_json_cannot_hold_is_encoded(tmp_path):
    path = tmp_path / "dirty.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "1,A,NA,6.0,not a date,inf,17850.0,UK\n"
        "1,B,,abc,12/1/10 8:26,-inf,,UK\n"
        "1,C,x,NaN,12/1/10 8:26,2.5,12.5,\n"
    )
    (order,) = orders_of(replay_events(path))
    first, second, third = order["lines"]
    assert first["description"] == "NA"  # only empty cells are missing
    assert first["quantity"] == 6.0 and isinstance(first["quantity"], float)
    assert first["unit_price"] == "Infinity" and second["unit_price"] == "-Infinity"
    assert second["quantity"] == "abc" and second["description"] is None
    assert third["quantity"] is None
    assert order["event_time"] == "not a date" and second["event_time"] == "12/1/10 8:26"
    assert third["customer_id"] == "12.5" and second["customer_id"] is None
    assert third["country"] is None


def test_numpy_values_become_json_numbers(tmp_path):
    frame = layout_frame("v1").astype({"Quantity": "int32", "UnitPrice": "float32"})
    frame.loc[0, "UnitPrice"] = np.inf
    events = replay_events(write(frame, tmp_path / "shop.parquet"))
    lines = {line["line_id"]: line for order in orders_of(events) for line in order["lines"]}
    assert [type(line["quantity"]) for line in lines.values()] == [int] * len(ROWS)
    assert lines["shop:0"]["unit_price"] == "Infinity"
    # float32 reaches JSON as the float64 it widens to: found, not rounded.
    assert lines["shop:1"]["unit_price"] == pytest.approx(1.85)


# --- events ----------------------------------------------------------------------------------


def test_fixture_events_group_invoices_in_order_of_first_appearance(tmp_path):
    summary = ReplaySummary()
    events = decoded(
        replay_events(write(layout_frame("v1"), tmp_path / "shop.csv"), summary=summary)
    )
    shape = [(topic, key, doc["event_type"], doc.get("order_id")) for topic, key, doc in events]
    assert shape == [
        (CATALOG_TOPIC, "85123A", "product_upserted", None),
        (CATALOG_TOPIC, "71053", "product_upserted", None),
        (EVENTS_TOPIC, "17850", "order_placed", "536365"),
        (CATALOG_TOPIC, "22633", "product_upserted", None),
        (EVENTS_TOPIC, None, "order_placed", "536366"),
        (CATALOG_TOPIC, "D", "product_upserted", None),
        (EVENTS_TOPIC, "14527", "order_cancelled", "C536379"),
        (CATALOG_TOPIC, "22139", "product_upserted", None),
        (EVENTS_TOPIC, None, "order_placed", None),
    ]
    docs = [doc for _, _, doc in events]
    assert [line["line_id"] for line in docs[2]["lines"]] == ["shop:0", "shop:2"]
    assert [line["line_id"] for line in docs[4]["lines"]] == ["shop:1", "shop:5"]
    assert docs[2]["lines"][1] == {
        "line_id": "shop:2",
        "product_id": "71053",
        "description": None,
        "quantity": 6,
        "unit_price": 3.39,
    }
    assert docs[1]["description"] is None and docs[1]["unit_price"] == 3.39
    assert docs[0]["event_time"] == docs[2]["event_time"] == "12/1/10 8:26"
    for doc in docs:
        assert doc["schema_version"] == "1" and doc["source"] == "replay"
    assert {d["currency"] for d in docs if "order_id" in d} == {"GBP"}
    assert docs[8]["event_id"] == str(uuid.uuid5(REPLAY_NAMESPACE, "shop:shop:4:order_placed"))
    assert docs[6]["event_id"] == str(uuid.uuid5(REPLAY_NAMESPACE, "shop:C536379:order_cancelled"))
    assert (summary.orders, summary.cancellations, summary.products, summary.lines) == (3, 1, 5, 6)


def test_limit_caps_orders_and_brings_only_their_products(tmp_path):
    path = write(layout_frame("v1"), tmp_path / "shop.csv")
    events = decoded(replay_events(path, limit=2))
    assert [doc.get("order_id") for topic, _, doc in events if topic == EVENTS_TOPIC] == [
        "536365",
        "536366",
    ]
    assert len(events) == 5
    assert list(replay_events(path, limit=0)) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "C3", "shop:0"])), max_size=30))
def test_every_row_is_exactly_one_line_of_one_order(invoices):
    n = len(invoices)
    frame = pd.DataFrame(
        {
            "line_id": [f"shop:{i}" for i in range(n)],
            "invoice": invoices,
            "stock_code": [f"P{i % 4}" for i in range(n)],
            "description": [None] * n,
            "quantity": list(range(n)),
            "invoice_date": ["d"] * n,
            "unit_price": [1.0] * n,
            "customer_id": [None] * n,
            "country": ["UK"] * n,
        },
        dtype=object,
    )
    orders = orders_of(build_events(frame, "shop"))
    assert sorted(line["line_id"] for o in orders for line in o["lines"]) == sorted(
        frame["line_id"]
    )
    present = [i for i in invoices if i is not None]
    assert len(orders) == len(set(present)) + invoices.count(None)
    assert [o["order_id"] for o in orders if o["order_id"]] == list(dict.fromkeys(present))
    if "shop:0" not in invoices:  # an invoice spelled like a line_id shares its event id
        assert len({o["event_id"] for o in orders}) == len(orders)


# --- the real sample -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_events():
    return decoded(replay_events(SAMPLE))


def test_sample_every_row_appears_once_and_revenue_reconciles(sample_events):
    source = pd.read_parquet(SAMPLE)
    lines = [
        line for topic, _, doc in sample_events if topic == EVENTS_TOPIC for line in doc["lines"]
    ]
    counts = Counter(line["line_id"] for line in lines)
    assert len(counts) == len(source) == 240_007
    assert set(counts.values()) == {1}
    assert set(counts) == {f"{SAMPLE.stem}:{i}" for i in range(len(source))}
    replayed = math.fsum(line["quantity"] * line["unit_price"] for line in lines)
    expected = math.fsum((source["Quantity"] * source["UnitPrice"]).tolist())
    assert round(replayed, 2) == round(expected, 2)


def test_sample_one_event_per_invoice_and_cancellations(sample_events):
    source = pd.read_parquet(SAMPLE)
    orders = [doc for topic, _, doc in sample_events if topic == EVENTS_TOPIC]
    assert [o["order_id"] for o in orders] == list(dict.fromkeys(source["InvoiceNo"]))
    cancelled = {o["order_id"] for o in orders if o["event_type"] == "order_cancelled"}
    assert cancelled == {i for i in source["InvoiceNo"].unique() if i.startswith("C")}
    products = [doc["product_id"] for topic, _, doc in sample_events if topic == CATALOG_TOPIC]
    assert sorted(products) == sorted(source["StockCode"].unique())


def test_sample_products_precede_their_first_order(sample_events):
    announced: set[str] = set()
    for topic, key, doc in sample_events:
        if topic == CATALOG_TOPIC:
            assert key == doc["product_id"]
            announced.add(key)
        else:
            assert {line["product_id"] for line in doc["lines"]} <= announced


def test_sample_event_ids_are_unique_and_deterministic(sample_events):
    ids = [doc["event_id"] for _, _, doc in sample_events]
    assert len(set(ids)) == len(ids)
    again = [json.loads(e.value)["event_id"] for e in replay_events(SAMPLE, limit=200)]
    assert again == ids[: len(again)]


def test_same_file_replays_to_identical_events(tmp_path):
    path = write(layout_frame("v2"), tmp_path / "shop.xlsx")
    assert list(replay_events(path)) == list(replay_events(path))


# --- bad input -------------------------------------------------------------------------------


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    cases = {}
    no_qty = write(layout_frame("v1").drop(columns="Quantity"), tmp_path / "online.csv")
    cases["missing column"] = (
        no_qty,
        "online.csv: missing required column 'Quantity' (layout 'Online Retail')",
    )
    no_price = write(layout_frame("v2").drop(columns=["Price", "Country"]), tmp_path / "two.xlsx")
    cases["missing columns"] = (
        no_price,
        "two.xlsx: missing required columns 'Price', 'Country' (layout 'Online Retail II')",
    )
    unknown = write(pd.DataFrame({"a": [1], "b": [2]}), tmp_path / "other.parquet")
    cases["unknown layout"] = (unknown, "other.parquet: unknown layout")
    txt = tmp_path / "x.txt"
    txt.write_text("hello")
    cases["file type"] = (
        txt,
        "x.txt: unknown file type '.txt' (expected .csv, .xlsx, .xls, .parquet)",
    )
    cases["no file"] = (tmp_path / "gone.csv", "gone.csv: no such file")
    (tmp_path / "folder.csv").mkdir()
    cases["directory"] = (tmp_path / "folder.csv", "folder.csv: is a directory")
    for name in ("corrupt.parquet", "corrupt.xlsx"):
        (tmp_path / name).write_bytes(b"\x00\x01 definitely not a table \xff" * 20)
        cases[name] = (tmp_path / name, f"{name}: not a readable .{name.split('.')[1]} table")
    (tmp_path / "empty.csv").write_bytes(b"")
    cases["empty csv"] = (tmp_path / "empty.csv", "empty.csv: not a readable .csv table")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 8)
    cases["binary csv"] = (tmp_path / "binary.csv", "binary.csv: ")
    return cases


def test_bad_inputs_raise_replay_input_error_naming_file_and_problem(tmp_path):
    for label, (path, message) in _bad_inputs(tmp_path).items():
        with pytest.raises(ReplayInputError) as caught:
            list(replay_events(path))
        assert str(caught.value).startswith(message), (label, str(caught.value))


def test_legacy_xls_without_xlrd_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "xlrd", None)  # absent, whatever this machine has installed
    path = tmp_path / "old.xls"
    path.write_bytes(b"whatever")
    with pytest.raises(ReplayInputError, match=r"^old\.xls: reading '\.xls' files needs xlrd"):
        load_transactions(path)


def test_cli_reports_bad_input_without_traceback(tmp_path):
    runner = CliRunner()
    for label, (path, message) in _bad_inputs(tmp_path).items():
        result = runner.invoke(replay, [str(path)])
        assert result.exit_code == 1, (label, result.output)
        assert "Traceback" not in result.output
        assert f"Error: {message}" in result.output, (label, result.output)


def test_cli_rejects_negative_limit_and_rate(tmp_path):
    path = write(layout_frame("v1"), tmp_path / "shop.csv")
    runner = CliRunner()
    assert runner.invoke(replay, [str(path), "--limit", "-1"]).exit_code == 2
    assert runner.invoke(replay, [str(path), "--rate", "0"]).exit_code == 2
