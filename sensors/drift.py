"""The drift sensor: asks for a retrain when recent data no longer looks like the serving
model's training data, or customers stop buying what they are recommended.

Each tick reads a bounded sample of recent interactions and the serving version's training
profile (pulsemart.ml_store.drift), computes PSI per feature and the live hit rate, and lets
`decide` (pure, unit-tested) choose. The retrain itself is the `ml_train` job; its gate still
decides whether the new version serves.
"""

import json
import math
from dataclasses import dataclass

import dagster as dg
import psycopg

from ml import registry
from ml.drift import drift_level
from orchestration.defs.common import IN_FLIGHT
from orchestration.resources import PostgresResource, PulsemartSettings
from pulsemart.config import Settings
from pulsemart.ml_store.drift import DriftObservation, NothingToCompare, observe

INTERVAL_S = 600  # drift builds over days; a look every ten minutes is plenty


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.25  # "major" shift by the usual reading of PSI (ml.drift.LEVELS)
    min_rows: int = 500  # values per feature; below this a PSI is mostly sampling noise
    hit_rate_ratio: float = 0.5  # retrain when live precision falls below half the holdout's
    min_buyers: int = 20
    window_days: float = 7.0


@dataclass(frozen=True)
class DriftDecision:
    retrain: bool
    reasons: tuple[str, ...]
    summary: str


def thresholds_for(settings: Settings) -> DriftThresholds:
    """The thresholds with PULSEMART_DRIFT_PSI_THRESHOLD applied (the settings model checks it
    is a number above 0); read at each tick, so a change needs no reload."""
    if settings.drift_psi_threshold is None:
        return DriftThresholds()
    return DriftThresholds(psi=settings.drift_psi_threshold)


def decide(observation: DriftObservation, thresholds: DriftThresholds) -> DriftDecision:
    """Retrain when a feature with at least `min_rows` recent values has a PSI above the
    threshold, or enough buyers show a live hit rate below `hit_rate_ratio` x the holdout's
    precision. Features with fewer values are reported but not judged."""
    judged = {
        name: value
        for name, value in observation.psi.items()
        if observation.counts.get(name, 0) >= thresholds.min_rows and not math.isnan(value)
    }
    reasons = [
        f"PSI {name} {value:.3f} > {thresholds.psi:g}"
        for name, value in sorted(judged.items())
        if value > thresholds.psi
    ]
    live, expected = observation.hit_rate, observation.expected_hit_rate
    if (
        live is not None
        and expected
        and observation.buyers >= thresholds.min_buyers
        and live < thresholds.hit_rate_ratio * expected
    ):
        reasons.append(
            f"hit rate {live:.4f} < {thresholds.hit_rate_ratio:g} x holdout "
            f"precision {expected:.4f} ({observation.buyers} buyers)"
        )
    psi_text = (
        ", ".join(
            f"{name} {value:.3f} ({drift_level(value)})"
            if name in judged
            else f"{name} {value:.3f} (not judged: {observation.counts.get(name, 0)} values)"
            for name, value in sorted(observation.psi.items())
        )
        or "none"
    )
    summary = (
        f"{observation.model_name} v{observation.version}, {observation.rows} interactions "
        f"since {observation.since}; PSI: {psi_text}"
    )
    if live is not None:
        summary += f"; hit rate {live:.4f} over {observation.buyers} buyers"
        if expected:
            summary += f" (holdout precision {expected:.4f})"
    return DriftDecision(bool(reasons), tuple(reasons), summary)


def run_request(
    observation: DriftObservation, decision: DriftDecision, job_name: str
) -> dg.RunRequest:
    """At most one retrain per serving version and day of newest data: a drift that persists
    (the gate rejected the retrained challenger) asks again only when a new day's data is in."""
    psi = {
        name: round(value, 4) for name, value in observation.psi.items() if not math.isnan(value)
    }
    return dg.RunRequest(
        run_key=f"ml_drift:{observation.model_name}:{observation.version}:"
        f"{(observation.newest or '')[:10]}",
        job_name=job_name,
        tags={
            "pulsemart/trigger": "drift",
            "pulsemart/drift_reasons": "; ".join(decision.reasons),
            "pulsemart/drift_psi": json.dumps(psi, sort_keys=True),
            "pulsemart/drift_model_version": observation.version,
        },
    )


def build_drift_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        name="ml_drift_sensor",
        job=job,
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests an ml_train run when recent interactions drift from the "
        "serving recommender's training data (PSI) or its live hit rate drops.",
    )
    def ml_drift_sensor(
        context: dg.SensorEvaluationContext,
        pulsemart: PulsemartSettings,
        postgres: PostgresResource,
    ):
        if context.instance.get_runs(
            filters=dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1
        ):
            return dg.SkipReason(f"an {job.name} run is in flight")
        thresholds = thresholds_for(pulsemart.get())
        try:
            with postgres.connection() as conn:
                observation = observe(conn, registry.RECOMMENDER, thresholds.window_days)
        except NothingToCompare as exc:
            return dg.SkipReason(str(exc))
        except psycopg.errors.UndefinedTable:
            return dg.SkipReason("the datamart is not built yet")
        decision = decide(observation, thresholds)
        if not decision.retrain:
            return dg.SkipReason(f"no drift: {decision.summary}")
        context.log.info(f"drift: {'; '.join(decision.reasons)} ({decision.summary})")
        return run_request(observation, decision, job.name)

    return ml_drift_sensor
