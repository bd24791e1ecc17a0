"""The serving layer's SQL is constant, and its pure helpers say what they mean."""

from datetime import UTC, datetime, timedelta

from pulsemart.serving import statements
from pulsemart.serving.fold import RefreshReport
from pulsemart.serving.queries import SEARCH, _like_pattern


def test_like_pattern_escapes_wildcards():
    assert _like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


# What each sort the API offers must mean, written out here rather than read from SORTS.
EXPECTED_ORDER = {
    "price": "p.unit_price asc, p.product_id",
    "-price": "p.unit_price desc, p.product_id",
    "popularity": "p.popularity desc, p.product_id",
}


def test_each_search_statement_orders_by_its_sort_with_a_stable_tie_break():
    assert set(SEARCH) == set(EXPECTED_ORDER)
    for name, order in EXPECTED_ORDER.items():
        text = SEARCH[name].as_string()
        assert f"\norder by {order}\nlimit %(limit)s" in text, name
        assert text.count("order by") == 1, name


def test_every_product_attribute_upsert_is_guarded_by_its_event_time():
    for statement in statements.PRODUCT_ATTRIBUTE_UPSERTS:
        time_column = statement.split("where excluded.")[1].split(" ")[0]
        assert time_column.endswith("_event_time")
        assert f">= coalesce(s.{time_column}, '-infinity'::timestamptz)" in statement
    assert "s.views + excluded.views" in statements.PRODUCT_COUNTERS


def test_statements_have_no_unformatted_placeholders():
    texts = [
        *statements.PRODUCT_ATTRIBUTE_UPSERTS,
        statements.PRODUCT_COUNTERS,
        statements.LOG_FOLD_CHANGES,
        statements.PRUNE_FOLD_CHANGES,
        statements.CUSTOMER_UPSERT,
        statements.SESSION_UPSERT,
        statements.TRENDING,
        statements.STAGE_EVENTS,
    ]
    assert not any("{" in text.replace("'{}'", "") for text in texts)


def test_event_time_lag():
    at = datetime(2024, 3, 1, tzinfo=UTC)
    report = RefreshReport(0, 3, batches=3, max_event_time=at)
    assert report.event_time_lag_s(at + timedelta(seconds=90)) == 90
    assert RefreshReport(0, 0).event_time_lag_s() is None
