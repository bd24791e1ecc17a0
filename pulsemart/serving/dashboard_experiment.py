"""The dashboard's experiment panel: the recommender's running experiment (else its latest), and
per variant its exposures, click-through rate, conversion and revenue per exposure, each with
its 95% interval.

marts.agg_experiment_daily keeps one row per day and variant. Its counts and sums add up over
days and its rates do not, so the panel sums the counts, revenue and revenue squared per variant
and computes each rate and its interval from the sums with ml.experiment_stats: a Wilson
interval for the click-through rate and the conversion, the normal interval of a mean for the
revenue per exposure. `experiment_panel` is pure and unit-tested; see docs/dashboard.md.
"""

from __future__ import annotations

from datetime import date, datetime

from pulsemart.serving.dashboard_queries import ExperimentRows

NO_EXPERIMENT = (
    "No experiment yet: start one with `pulsemart model experiment start`, and its variants' "
    "figures show here once the datamart has their exposures."
)
MART_NOT_BUILT = (
    "The experiment readout is not built yet (marts.agg_experiment_daily does not exist). "
    "Run `pulsemart datamart build`, or materialize the datamart assets in Dagster, then "
    "reload this page."
)
NO_EXPOSURES = (
    "No exposures of experiment {experiment_id} in the datamart yet: they appear after the next "
    "datamart build."
)
# The arm every experiment has besides its configured variants.
CHAMPION = "champion"
# What adds up over days; the rates and their intervals do not.
ADDITIVE = ("exposures", "clicks", "purchases", "revenue", "revenue_sq")


def _iso(value) -> str | None:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def sum_by_variant(days: list[dict]) -> dict[str, dict]:
    """The mart's daily rows added up per variant, with the days each variant was seen."""
    totals: dict[str, dict] = {}
    for day in days:
        variant = totals.setdefault(
            day["variant"],
            {"variant": day["variant"], "model_version": day.get("model_version"), "days": []}
            | dict.fromkeys(ADDITIVE, 0),
        )
        for name in ADDITIVE:
            variant[name] += day.get(name) or 0
        variant["days"].append(day["exposure_date"])
    return totals


def _interval(found) -> dict:
    return {"estimate": found.estimate, "low": found.low, "high": found.high}


def rate(successes: int, n: int) -> dict:
    """successes / n with its Wilson interval; no interval when successes is outside 0..n (a
    mart that counted something else than exposures shows its figure, never fails the page)."""
    # scipy loads when an experiment is first drawn rather than when the API starts.
    from ml.experiment_stats import wilson

    if n > 0 and not 0 <= successes <= n:
        return {"estimate": successes / n, "low": None, "high": None}
    return _interval(wilson(successes, n))


def per_exposure(total: float, total_sq: float, n: int) -> dict:
    """The mean per exposure from its sum and sum of squares, with its normal interval."""
    from ml.experiment_stats import mean_interval

    return _interval(mean_interval(total, total_sq, n))


def arms(experiment: dict, variants: list[dict]) -> list[dict]:
    """Each arm's model version and share, the champion first: it serves the shoppers the
    variants leave, or all of them in a shadow experiment, whose variant is scored for its
    share and never shown. (`pulsemart.ml_store.experiments.Experiment.shares` says the same;
    the serving layer cannot import ml_store, which imports the stream layer, which imports
    serving.)"""
    shown = 1.0 if experiment["shadow"] else 1.0 - sum(v["share"] for v in variants)
    champion = {
        "variant": CHAMPION,
        "model_version": experiment["champion_version"],
        "share": max(0.0, shown),
    }
    return [champion] + [
        {"variant": v["variant"], "model_version": v["model_version"], "share": v["share"]}
        for v in variants
    ]


def describe(experiment: dict, variants: list[dict]) -> dict:
    """What the panel's heading says: id, model, status, start and the arms' shares."""
    return {
        "experiment_id": experiment["experiment_id"],
        "model_name": experiment["model_name"],
        "status": experiment["status"],
        "shadow": experiment["shadow"],
        "champion_version": experiment["champion_version"],
        "started_at": _iso(experiment["started_at"]),
        "ended_at": _iso(experiment["ended_at"]),
        "shares": arms(experiment, variants),
    }


def variant_figures(totals: dict, model_version: str | None, share: float | None) -> dict:
    """One variant's figures from its totals over the days (`sum_by_variant`)."""
    exposures, clicks, purchases = (int(totals[k]) for k in ("exposures", "clicks", "purchases"))
    revenue, revenue_sq = float(totals["revenue"]), float(totals["revenue_sq"])
    return {
        "variant": totals["variant"],
        "model_version": model_version or totals.get("model_version"),
        "share": share,
        "exposures": exposures,
        "clicks": clicks,
        "purchases": purchases,
        "revenue": revenue,
        "ctr": rate(clicks, exposures),
        "conversion": rate(purchases, exposures),
        "revenue_per_exposure": per_exposure(revenue, revenue_sq, exposures),
        "first_day": _iso(min(totals["days"], default=None)),
        "last_day": _iso(max(totals["days"], default=None)),
    }


def experiment_panel(rows: ExperimentRows) -> dict:
    """The panel's figures, or `available: false` and why: no experiment, the mart not built,
    or no exposures of the experiment in it yet. Variants in the order of their arms (the
    champion first), then any the mart has that the experiment does not configure."""
    if rows.experiment is None:
        return {"available": False, "message": NO_EXPERIMENT, "experiment": None, "variants": []}
    heading = describe(rows.experiment, rows.variants)
    if rows.days is None:
        return {
            "available": False,
            "message": MART_NOT_BUILT,
            "experiment": heading,
            "variants": [],
        }
    configured = {arm["variant"]: arm for arm in heading["shares"]}
    order = {name: rank for rank, name in enumerate(configured)}
    measured = sorted(
        (t for t in sum_by_variant(rows.days).values() if t["exposures"] > 0),
        key=lambda t: (order.get(t["variant"], len(order)), t["variant"]),
    )
    variants = []
    for totals in measured:
        arm = configured.get(totals["variant"], {})
        variants.append(variant_figures(totals, arm.get("model_version"), arm.get("share")))
    if not variants:
        message = NO_EXPOSURES.format(experiment_id=heading["experiment_id"])
        return {"available": False, "message": message, "experiment": heading, "variants": []}
    return {"available": True, "message": None, "experiment": heading, "variants": variants}
