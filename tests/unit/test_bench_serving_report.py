"""The serving section's verdict rests on the uncached run; the cached one is secondary."""

from __future__ import annotations

from pulsemart_bench.serving import ApiResult, LoadResult
from pulsemart_bench.serving_report import api_tables, api_verdict, recommendations_measured

NAMES = (
    "GET /health (anchor)",
    "GET /products/search",
    "GET /customers/{id}/recommendations?k=10",
    "GET /customers/{id} (propensity)",
)


def run(
    rates: tuple[int, ...], p99_ms: tuple[float, ...], connections: int = 50
) -> list[LoadResult]:
    return [
        LoadResult(
            name,
            connections,
            20.0,
            rate * 20,
            rate * 2000,
            0,
            0,
            p99 / 2000,
            p99 / 1000,
            p99 / 500,
            (1.0, 1.0, 1.0),
        )
        for name, rate, p99 in zip(NAMES, rates, p99_ms, strict=True)
    ]


def api(uncached: list[LoadResult], recommender: str | None = None) -> ApiResult:
    cached = run((6000, 8000, 10000, 12000), (68, 10, 11, 8))  # the cache meets the target
    return ApiResult(
        cached, run((2700, 3200, 4100, 4500), (1, 0.7, 0.6, 0.5), 1), uncached, 2, 1378, recommender
    )


def test_a_cache_that_meets_the_target_does_not_make_the_verdict():
    missed = api(run((5800, 2500, 1600, 2900), (72, 102, 114, 102)))
    verdict = api_verdict(missed, 50)
    assert "judged on the `--no-cache` run" in verdict
    assert "GET /products/search p99 102.0 ms" in verdict and "Overall: NOT met" in verdict
    assert "static mix (secondary, not judged): GET /products/search p99 10.0 ms" in verdict


def test_the_verdict_is_met_when_the_uncached_run_meets_it():
    assert "Overall: met" in api_verdict(api(run((5000, 4500, 4200, 4800), (30, 20, 24, 15))), 50)
    slow_share = api(run((5000, 3000, 4200, 4800), (30, 20, 24, 15)))  # search below 0.8× /health
    assert "Overall: NOT met" in api_verdict(slow_share, 50)


def test_the_uncached_table_comes_first_and_alone_carries_the_target():
    uncached, cached, single = api_tables(api(run((5800, 2500, 1600, 2900), (72, 102, 114, 102))))
    assert (
        "`--no-cache`" in uncached.headers[0]
        and "secondary" in cached.headers[0]
        and "one connection" in single.headers[0]
    )
    target = uncached.headers.index("Target")
    assert [row[target] for row in uncached.rows][1:] == ["p99 ≤ 25 ms, ≥ 0.8× /health"] * 3
    assert {row[target] for row in cached.rows + single.rows} == {"—"}


def test_it_says_when_recommendations_measured_only_the_fallback():
    assert "trending fallback" in recommendations_measured(api([], None))
    assert "is not measured" in recommendations_measured(api([], None))
    assert "'7' was deployed" in recommendations_measured(api([], "7"))
