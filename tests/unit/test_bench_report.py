"""Report rendering and ratio arithmetic of `pulsemart bench` (no timing is asserted)."""

from __future__ import annotations

import pytest
from pulsemart_bench.measure import Measurement, percentile, ratio
from pulsemart_bench.report import (
    Section,
    Table,
    fmt_ratio,
    merge_section,
    rate_row,
    rate_table,
    write_sections,
)


def m(name="x", count=1000, size=2_000_000, seconds=2.0, unit="events"):
    return Measurement(name, count, size, seconds, unit)


def test_rates_are_per_second_and_megabytes_are_decimal():
    got = m(count=1000, size=2_000_000, seconds=2.0)
    assert got.rate == 500.0
    assert got.mb_per_s == 1.0


def test_zero_seconds_gives_zero_rate_not_an_error():
    assert m(seconds=0).rate == 0.0
    assert m(seconds=0).mb_per_s == 0.0


def test_ratio_compares_rates_not_times():
    anchor = m("anchor", count=1000, seconds=1.0)
    measured = m("slow", count=2000, seconds=4.0)  # more records, more time: 500/s vs 1000/s
    assert ratio(measured, anchor) == pytest.approx(0.5)


def test_ratio_without_a_usable_anchor_is_none():
    assert ratio(m(), None) is None
    assert ratio(m(), m(seconds=0)) is None


def test_fmt_ratio_shows_factor_and_percent():
    assert fmt_ratio(0.7234) == "0.72× (72%)"
    assert fmt_ratio(None) == "—"


def test_rate_row_puts_the_anchor_beside_the_figure():
    anchor = m("anchor: bare", count=1000, seconds=1.0)
    row = rate_row(m("ingest", count=1000, size=3_000_000, seconds=2.0, unit="records"), anchor)
    assert row == [
        "ingest",
        "1,000 records",
        "3.0",
        "2.00",
        "500",
        "1.5",
        "anchor: bare",
        "0.50× (50%)",
    ]
    assert rate_row(anchor)[-2:] == ["—", "—"]


def test_table_renders_markdown_with_right_aligned_numbers():
    text = rate_table([(m("a"), None)]).render().splitlines()
    assert text[0].startswith("| Measurement | Items |")
    assert text[1] == "|---|---:|---:|---:|---:|---:|---:|---:|"
    assert text[2].startswith("| a | 1,000 events |")


@pytest.mark.parametrize("q, expected", [(50, 5), (95, 10), (100, 10), (1, 1)])
def test_percentile_is_nearest_rank(q, expected):
    assert percentile(list(range(10, 0, -1)), q) == expected


def test_percentile_of_nothing_is_none():
    assert percentile([], 95) is None


def section(key="produce", body_note="first"):
    return Section(
        key=key,
        title=f"{key} title",
        command="pulsemart bench all",
        date="2024-01-01 00:00 UTC",
        machine={"CPU": "Test CPU", "Cores": "2"},
        tables=[Table(["A", "B"], [["x", "1"]])],
        notes=[body_note],
    )


def test_section_names_date_command_and_machine():
    text = section().render()
    for expected in (
        "## produce title",
        "- Date: 2024-01-01 00:00 UTC",
        "- Command: `pulsemart bench all`",
        "- CPU: Test CPU",
        "| x | 1 |",
        "- first",
    ):
        assert expected in text


def test_merge_replaces_only_its_own_section_and_keeps_others():
    doc = "# title\n\nhand-written intro\n\n<!-- bench:other -->\nkeep me\n<!-- /bench:other -->\n"
    doc = merge_section(doc, "produce", "v1")
    doc = merge_section(doc, "produce", "v2")
    assert "hand-written intro" in doc and "keep me" in doc
    assert doc.count("<!-- bench:produce -->") == 1
    assert "v2" in doc and "v1" not in doc


def test_merge_into_an_empty_document_adds_the_header():
    doc = merge_section("", "ingest", "body")
    assert doc.startswith("# pulsemart benchmarks")
    assert "<!-- bench:ingest -->\nbody\n<!-- /bench:ingest -->" in doc


def test_merge_keeps_backslashes_literally():
    assert r"C:\new" in merge_section(merge_section("", "k", "old"), "k", r"C:\new")


def test_write_sections_updates_the_file_in_place(tmp_path):
    path = tmp_path / "benchmarks" / "BENCHMARKS.md"
    write_sections(path, [section("produce", "p1"), section("ingest", "i1")])
    write_sections(path, [section("produce", "p2")])
    text = path.read_text()
    assert "- p2" in text and "- p1" not in text and "- i1" in text
    assert text.index("bench:produce") < text.index("bench:ingest")


# --- bench serving: request mixes and load figures (pure, nothing timed) ---------------------


def test_search_mix_is_deterministic_and_uses_only_valid_parameters():
    from pulsemart_bench.serving import search_mix

    args = (
        ["home_decor", "kitchen"],
        [1.25, 2.5, 9.99, 20.0],
        ["RED RETROSPOT BAG", "WHITE MUG"],
        ["P00001", "P00002"],
        300,
        7,
    )
    mix = search_mix(*args)
    assert mix == search_mix(*args) and len(mix) == 300
    allowed = {
        "q",
        "category",
        "price_min",
        "price_max",
        "available",
        "customizable",
        "sort",
        "limit",
    }
    for path, params in mix:
        assert path == "/products/search" and set(params) <= allowed
        if "price_min" in params:
            assert 0 < params["price_min"] < params["price_max"]
        assert params.get("sort", "popularity") in {"price", "-price", "popularity"}
    kinds = {frozenset(p) for _, p in mix}
    assert frozenset({"category", "price_min", "price_max", "available", "sort"}) in kinds
    assert frozenset({"q"}) in kinds


def test_recommendation_mix_has_known_and_a_few_unknown_customers():
    from pulsemart_bench.serving import recommendation_mix

    mix = recommendation_mix(["C1", "C2", "C3"], 1000, 3, unknown_share=0.05)
    unknown = [p for p, _ in mix if "bench-unknown-" in p]
    assert 20 <= len(unknown) <= 80
    assert all(params == {"k": 10} and p.endswith("/recommendations") for p, params in mix)
    assert all("bench-unknown-" in p for p, _ in recommendation_mix([], 5, 3))


def test_session_mix_asks_for_each_shopper_with_their_own_session():
    from pulsemart_bench.serving import session_mix

    pairs = [("S1", "C1"), ("S2", "C2")]
    mix = session_mix(pairs, 200, 5)
    assert len(mix) == 200 and {(p, q["session_id"]) for p, q in mix} == {
        ("/customers/C1/recommendations", "S1"),
        ("/customers/C2/recommendations", "S2"),
    }
    assert session_mix([], 10, 5) == []


def test_wrk_script_cycles_through_the_requests_quoted_and_encoded(tmp_path):
    from pulsemart_bench.serving import LoadResult, wrk_script

    script = wrk_script(
        [("/products/search", {"q": 'say "hi"', "limit": 5}), ("/health", {})], tmp_path
    )
    lua = script.read_text()
    assert '"/products/search?q=say+%22hi%22&limit=5", "/health"}' in lua
    assert "function request()" in lua and "WRK_JSON" in lua
    result = LoadResult("x", 50, 2.0, 10, 100, 2, 3, 0.01, 0.5, 0.6, (1.0, 1.0, 1.0))
    assert result.measurement().rate == 5.0 and result.measurement().unit == "requests"
    assert result.p(50) == 0.01 and result.p(99) == 0.5
