"""The statistics of an online experiment's readout: intervals, lift tests, sample ratio.

- A rate (CTR, conversion) gets a Wilson score interval: unlike the normal approximation it
  stays inside [0, 1] and behaves for the small counts of an experiment's first minutes.
- The difference of two rates gets the unpooled normal interval, and its test the pooled
  two-proportion z-test (the two agree on the sign of significance but for edge cases).
- A mean per exposure (revenue) gets the normal interval from its sum and sum of squares, and
  the difference of two means Welch's normal interval and z-test: with thousands of exposures
  per arm the t and the normal quantiles agree to the third digit.
- The sample ratio mismatch (SRM) test is Pearson's chi-square of the observed counts against
  the configured shares; a tiny p (by convention below 0.001) means the assignment or the
  logging is broken, and no other figure of the experiment can be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

DEFAULT_ALPHA = 0.05
SRM_ALPHA = 0.001


@dataclass(frozen=True)
class Interval:
    estimate: float | None
    low: float | None
    high: float | None

    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


@dataclass(frozen=True)
class Comparison:
    """Treatment minus control: the difference, its interval and the test's two-sided p."""

    difference: Interval
    p_value: float | None
    relative_lift: float | None  # difference / control estimate

    def significant(self, alpha: float = DEFAULT_ALPHA) -> bool:
        return self.p_value is not None and self.p_value < alpha


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def wilson(successes: int, n: int, alpha: float = DEFAULT_ALPHA) -> Interval:
    """The rate successes/n with its Wilson score interval; all None when n is 0."""
    if n <= 0:
        return Interval(None, None, None)
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside 0..{n}")
    z = _z(alpha)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def compare_rates(
    successes_t: int, n_t: int, successes_c: int, n_c: int, alpha: float = DEFAULT_ALPHA
) -> Comparison:
    """Treatment's rate minus control's: interval and pooled two-proportion z-test."""
    if n_t <= 0 or n_c <= 0:
        return Comparison(Interval(None, None, None), None, None)
    p_t, p_c = successes_t / n_t, successes_c / n_c
    difference = p_t - p_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    z = _z(alpha)
    pooled = (successes_t + successes_c) / (n_t + n_c)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p_value = 2 * float(stats.norm.sf(abs(difference) / se_pooled)) if se_pooled > 0 else 1.0
    return Comparison(
        Interval(difference, difference - z * se, difference + z * se),
        p_value,
        difference / p_c if p_c > 0 else None,
    )


def mean_interval(total: float, total_sq: float, n: int, alpha: float = DEFAULT_ALPHA) -> Interval:
    """The mean of n values from their sum and sum of squares, with its normal interval."""
    if n <= 0:
        return Interval(None, None, None)
    mean = total / n
    half = _z(alpha) * math.sqrt(_variance(total, total_sq, n) / n)
    return Interval(mean, mean - half, mean + half)


def compare_means(
    total_t: float,
    total_sq_t: float,
    n_t: int,
    total_c: float,
    total_sq_c: float,
    n_c: int,
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """Treatment's mean minus control's: Welch's normal interval and z-test."""
    if n_t <= 1 or n_c <= 1:
        return Comparison(Interval(None, None, None), None, None)
    mean_t, mean_c = total_t / n_t, total_c / n_c
    se = math.sqrt(
        _variance(total_t, total_sq_t, n_t) / n_t + _variance(total_c, total_sq_c, n_c) / n_c
    )
    difference = mean_t - mean_c
    z = _z(alpha)
    p_value = 2 * float(stats.norm.sf(abs(difference) / se)) if se > 0 else 1.0
    return Comparison(
        Interval(difference, difference - z * se, difference + z * se),
        p_value,
        difference / mean_c if mean_c > 0 else None,
    )


def _variance(total: float, total_sq: float, n: int) -> float:
    """The sample variance (n - 1) from a sum and a sum of squares; 0 for one value."""
    if n <= 1:
        return 0.0
    return max(0.0, (total_sq - total * total / n) / (n - 1))


@dataclass(frozen=True)
class SampleRatio:
    chi_square: float
    p_value: float
    expected: dict[str, float]

    def mismatch(self, alpha: float = SRM_ALPHA) -> bool:
        return self.p_value < alpha


def sample_ratio(observed: dict[str, int], shares: dict[str, float]) -> SampleRatio:
    """Pearson's chi-square of the observed counts per arm against the configured shares.

    Arms configured with share 0 must see nothing; an arm observed but not configured is a
    mismatch whatever its count (p = 0)."""
    unknown = {arm for arm, n in observed.items() if n and shares.get(arm, 0) <= 0}
    total = sum(observed.values())
    share_total = sum(s for s in shares.values() if s > 0)
    if share_total <= 0:
        raise ValueError("no arm has a positive share")
    expected = {arm: total * s / share_total for arm, s in shares.items() if s > 0}
    if unknown:
        return SampleRatio(math.inf, 0.0, expected)
    if total == 0 or len(expected) < 2:
        return SampleRatio(0.0, 1.0, expected)
    chi_square = sum((observed.get(arm, 0) - e) ** 2 / e for arm, e in expected.items())
    p_value = float(stats.chi2.sf(chi_square, df=len(expected) - 1))
    return SampleRatio(chi_square, p_value, expected)
