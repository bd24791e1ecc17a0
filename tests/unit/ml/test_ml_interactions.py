import pandas as pd
import pytest

from ml.interactions import COLUMNS, FeeCodes, from_frame, from_transactions, is_fee_code
from pulsemart.ml_store.retail import fee_codes
from pulsemart.ml_store.retail import load_interactions as from_online_retail

OLD_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
NEW_HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
# One good line per customer, then each kind of line a purchase is not.
LINES = [
    ("536365", "85123A", "WHITE HANGING HEART", "6", "2010-12-01 08:26", "2.55", "17850.0"),
    ("536366", "22633", "HAND WARMER", "2", "2010-12-02 09:00", "1.85", "13047"),
    ("536367", "22633", "NO CUSTOMER", "1", "2010-12-02 09:00", "1.85", ""),
    ("C536368", "22633", "CANCELLED", "-1", "2010-12-02 10:00", "1.85", "13047"),
    ("536369", "POST", "POSTAGE", "1", "2010-12-02 10:00", "18.00", "13047"),
    ("536370", "gift_0001_20", "VOUCHER", "1", "2010-12-02 10:00", "16.00", "13047"),
    ("536371", "22633", "FREE", "1", "2010-12-02 10:00", "0", "13047"),
    ("536372", "22633", "WRITE OFF", "-5", "2010-12-02 10:00", "1.85", "13047"),
]


def _us(iso: str) -> str:
    moment = pd.Timestamp(iso)
    return f"{moment.month}/{moment.day}/{moment:%y} {moment.hour}:{moment:%M}"


def _write(path, header, date):
    body = "".join(
        f"{inv},{code},{desc},{qty},{date(when)},{price},{cust},United Kingdom\n"
        for inv, code, desc, qty, when, price, cust in LINES
    )
    path.write_text(header + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("header", "date"),
    [(OLD_HEADER, _us), (NEW_HEADER, lambda iso: f"{iso}:00")],
    ids=["online-retail-us-dates", "online-retail-ii-iso-dates"],
)
def test_online_retail_keeps_only_purchases(tmp_path, header, date):
    frame = from_online_retail(_write(tmp_path / "sample.csv", header, date))

    assert list(frame.columns) == list(COLUMNS)
    assert frame["customer_id"].tolist() == ["17850", "13047"]
    assert frame["product_id"].tolist() == ["85123A", "22633"]
    assert frame["event_time"].tolist() == [
        pd.Timestamp("2010-12-01 08:26", tz="UTC"),
        pd.Timestamp("2010-12-02 09:00", tz="UTC"),
    ]
    assert str(frame["event_time"].dtype) == "datetime64[ns, UTC]"
    assert set(frame["event_type"]) == {"purchase"}
    assert frame["quantity"].tolist() == [6.0, 2.0]
    assert frame["unit_price"].tolist() == [2.55, 1.85]
    assert frame["order_id"].tolist() == ["536365", "536366"]
    assert frame["session_id"].tolist() == [None, None]
    assert frame.attrs["dropped"] == {
        "no_customer": 1,
        "cancellation": 1,
        "fee_code": 2,
        "quantity_not_positive": 1,
        "price_not_positive": 1,
        "unreadable_time": 0,
    }


def test_parquet_and_csv_load_alike(tmp_path):
    csv = _write(tmp_path / "sample.csv", OLD_HEADER, _us)
    raw = pd.read_csv(csv, dtype={"InvoiceNo": str, "StockCode": str})
    raw.to_parquet(tmp_path / "sample.parquet")  # CustomerID becomes a float, as in the UCI file
    pd.testing.assert_frame_equal(
        from_online_retail(tmp_path / "sample.parquet"), from_online_retail(csv), check_like=False
    )


def test_excel_with_real_datetimes_loads_like_csv(tmp_path):
    csv = _write(tmp_path / "sample.csv", NEW_HEADER, lambda iso: f"{iso}:00")
    raw = pd.read_csv(csv, dtype={"Invoice": str, "StockCode": str})
    raw["InvoiceDate"] = pd.to_datetime(raw["InvoiceDate"])  # Excel cells hold datetimes
    raw.to_excel(tmp_path / "sample.xlsx", index=False)
    pd.testing.assert_frame_equal(
        from_online_retail(tmp_path / "sample.xlsx"), from_online_retail(csv)
    )


def test_fee_codes_come_from_the_quality_rules():
    codes = pd.Series(["POST", "M", "m", "BANK CHARGES", "gift_0001_40", "85123A", "DCGS0003"])
    assert is_fee_code(codes, fee_codes()).tolist() == [True, True, True, True, True, False, False]


def test_the_fee_codes_are_an_argument_of_the_modelling_layer():
    lines = pd.DataFrame(
        {
            "invoice": ["1", "2", "3"],
            "stock_code": ["SHIP", "ship", "A1"],
            "description": ["shipping", "shipping", "a product"],
            "quantity": [1, 1, 2],
            "invoice_date": pd.to_datetime(["2024-01-01"] * 3, utc=True),
            "unit_price": [5.0, 5.0, 3.0],
            "customer_id": ["c1", "c1", "c1"],
            "country": ["UK"] * 3,
        }
    )
    assert from_transactions(lines, FeeCodes()).shape[0] == 3  # no codes: every line a product
    kept = from_transactions(lines, FeeCodes.of(codes=["Ship"]))
    assert kept["product_id"].tolist() == ["A1"] and kept.attrs["dropped"]["fee_code"] == 2
    assert from_transactions(lines, FeeCodes.of(patterns=[r"[A-Z]\d"])).shape[0] == 2
    with pytest.raises(ValueError, match="customer_id"):
        from_transactions(lines.drop(columns="customer_id"), FeeCodes())


def test_from_frame_names_every_missing_column():
    with pytest.raises(ValueError, match="customer_id, event_time"):
        from_frame(pd.DataFrame({"product_id": ["p"], "event_type": ["view"]}))


def test_from_frame_rejects_unknown_event_types():
    with pytest.raises(ValueError, match="refund"):
        from_frame(
            pd.DataFrame(
                {
                    "customer_id": ["c"],
                    "product_id": ["p"],
                    "event_time": ["2024-01-01T00:00:00Z"],
                    "event_type": ["refund"],
                }
            )
        )


def test_from_frame_fills_optional_columns_and_fixes_types():
    frame = from_frame(
        pd.DataFrame(
            {
                "customer_id": [17850, 13047],
                "product_id": ["p1", "p2"],
                "event_time": pd.to_datetime(
                    ["2024-01-02 10:00", "2024-01-01 09:00"]
                ),  # naive: UTC
                "event_type": ["VIEW", "cart"],
                "extra": [1, 2],
            }
        )
    )

    assert list(frame.columns) == list(COLUMNS)
    assert frame["customer_id"].tolist() == ["13047", "17850"]  # sorted by time
    assert frame["event_time"].iloc[0] == pd.Timestamp("2024-01-01 09:00", tz="UTC")
    assert frame["event_type"].tolist() == ["cart", "view"]
    assert frame["quantity"].tolist() == [1.0, 1.0]
    assert frame["unit_price"].isna().all()
    assert frame["order_id"].tolist() == [None, None]
