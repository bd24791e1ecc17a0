"""An online experiment's readout: each arm's figures with their intervals, each challenger
against the champion, and the sample ratio.

The figures come from marts.agg_experiment_daily, where the datamart joins each exposure to its
outcomes (docs/ml.md, "Online experiments"). Its counts, revenue and revenue squared add up
across days, so one grouped query gives an experiment's totals per arm however long it ran.
The statistics are ml.experiment_stats'. Every readout the Dagster asset computes is kept in
governance.experiment_readouts (migration 014). The gate and the guardrail that judge a readout
are in online_gate.py. No Dagster here (orchestration/defs/ml/experiments.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

import psycopg
from psycopg.types.json import Jsonb

from ml.experiment_stats import (
    DEFAULT_ALPHA,
    SRM_ALPHA,
    Comparison,
    Interval,
    SampleRatio,
    compare_means,
    compare_rates,
    mean_interval,
    sample_ratio,
    wilson,
)
from pulsemart.ml_store.experiments import Experiment
from pulsemart.ml_store.records import _plain

CHAMPION = "champion"
METRICS = ("ctr", "conversion", "revenue_per_exposure")
MART = "marts.agg_experiment_daily"
TOTALS_SQL = """
select variant, string_agg(distinct model_version, ',' order by model_version),
       coalesce(sum(exposures), 0), coalesce(sum(clicks), 0), coalesce(sum(purchases), 0),
       coalesce(sum(revenue), 0), coalesce(sum(revenue_sq), 0)
from marts.agg_experiment_daily where experiment_id = %s group by variant order by variant
"""


@dataclass(frozen=True)
class ArmTotals:
    """One arm's totals over the whole experiment; `model_version` may list several, comma
    separated, when what the arm served changed while it ran (a champion promoted)."""

    variant: str
    model_version: str | None
    exposures: int
    clicks: int
    purchases: int
    revenue: float
    revenue_sq: float


@dataclass(frozen=True)
class Arm:
    totals: ArmTotals
    share: float | None  # as configured; None for an arm observed but never configured
    ctr: Interval
    conversion: Interval
    revenue_per_exposure: Interval

    @property
    def variant(self) -> str:
        return self.totals.variant


@dataclass(frozen=True)
class Readout:
    experiment: Experiment
    arms: tuple[Arm, ...]
    # Per challenger arm, per metric: the arm minus the champion.
    comparisons: dict[str, dict[str, Comparison]]
    sample_ratio: SampleRatio
    alpha: float
    notes: tuple[str, ...] = field(default=())

    def arm(self, variant: str) -> Arm | None:
        return next((a for a in self.arms if a.variant == variant), None)

    def as_dict(self) -> dict:
        """The readout as plain JSON values (what governance.experiment_readouts keeps)."""
        e = self.experiment
        srm = self.sample_ratio
        return _plain(
            {
                "experiment_id": e.experiment_id,
                "model_name": e.model_name,
                "status": e.status,
                "shadow": e.shadow,
                "champion_version": e.champion_version,
                "started_at": e.started_at.isoformat(),
                "ended_at": e.ended_at.isoformat() if e.ended_at else None,
                "alpha": self.alpha,
                "arms": [
                    {
                        **asdict(a.totals),
                        "share": a.share,
                        **{m: asdict(getattr(a, m)) for m in METRICS},
                    }
                    for a in self.arms
                ],
                "comparisons": {
                    variant: {
                        m: {
                            **asdict(c.difference),
                            "relative_lift": c.relative_lift,
                            "p_value": c.p_value,
                            "significant": c.significant(self.alpha),
                        }
                        for m, c in metrics.items()
                    }
                    for variant, metrics in self.comparisons.items()
                },
                "sample_ratio": {
                    "chi_square": srm.chi_square,
                    "p_value": srm.p_value,
                    "alpha": SRM_ALPHA,
                    "mismatch": srm.mismatch(),
                    "expected": srm.expected,
                    "observed": {a.variant: a.totals.exposures for a in self.arms},
                },
                "notes": list(self.notes),
            }
        )


def summarize(
    experiment: Experiment, totals: Iterable[ArmTotals], alpha: float = DEFAULT_ALPHA
) -> Readout:
    """The readout of `experiment` from its arms' totals. Every configured arm is shown (with
    zeros when nothing was observed), and any observed arm that was not configured; a shadow
    experiment shows its champion alone, since the shadow is never shown to anyone."""
    shares = experiment.shares
    observed = {t.variant: t for t in totals}
    if experiment.shadow:
        observed = {k: t for k, t in observed.items() if k == CHAMPION}
    versions = {CHAMPION: experiment.champion_version}
    versions.update({v.name: v.model_version for v in experiment.variants})
    names = [*shares, *sorted(set(observed) - set(shares))]
    arms = tuple(
        _arm(
            observed.get(name) or ArmTotals(name, versions.get(name), 0, 0, 0, 0.0, 0.0),
            shares.get(name),
            versions.get(name),
            alpha,
        )
        for name in names
    )
    champion = next(a for a in arms if a.variant == CHAMPION)
    comparisons = {
        a.variant: _compare(a.totals, champion.totals, alpha) for a in arms if a is not champion
    }
    srm = sample_ratio({a.variant: a.totals.exposures for a in arms}, shares)
    notes = tuple(
        f"{a.variant} served versions {a.totals.model_version} while the experiment ran"
        for a in arms
        if a.totals.model_version and "," in a.totals.model_version
    )
    return Readout(experiment, arms, comparisons, srm, alpha, notes)


def _arm(totals: ArmTotals, share: float | None, version: str | None, alpha: float) -> Arm:
    n = totals.exposures
    if version and not totals.model_version:
        totals = ArmTotals(**{**asdict(totals), "model_version": version})
    return Arm(
        totals,
        share,
        wilson(totals.clicks, n, alpha),
        wilson(totals.purchases, n, alpha),
        mean_interval(totals.revenue, totals.revenue_sq, n, alpha),
    )


def _compare(t: ArmTotals, c: ArmTotals, alpha: float) -> dict[str, Comparison]:
    return {
        "ctr": compare_rates(t.clicks, t.exposures, c.clicks, c.exposures, alpha),
        "conversion": compare_rates(t.purchases, t.exposures, c.purchases, c.exposures, alpha),
        "revenue_per_exposure": compare_means(
            t.revenue, t.revenue_sq, t.exposures, c.revenue, c.revenue_sq, c.exposures, alpha
        ),
    }


def read_totals(conn: psycopg.Connection, experiment_id: int) -> list[ArmTotals] | None:
    """Each arm's totals from the datamart (a row per arm); None when the mart is not built."""
    built = conn.execute("select to_regclass(%s) is not null", (MART,)).fetchone()
    if not (built and built[0]):
        return None
    rows = conn.execute(TOTALS_SQL, (experiment_id,)).fetchall()
    return [
        ArmTotals(v, version, int(n), int(clicks), int(buys), float(rev), float(rev_sq))
        for v, version, n, clicks, buys, rev, rev_sq in rows
    ]


def compute_readout(
    conn: psycopg.Connection, experiment: Experiment, alpha: float = DEFAULT_ALPHA
) -> Readout:
    """The readout of `experiment` as the datamart has it now (all zeros before its first build,
    with a note saying so: a gate then fails on too few exposures)."""
    totals = read_totals(conn, experiment.experiment_id)
    readout = summarize(experiment, totals or [], alpha)
    if totals is None:
        note = f"{MART} is not built yet: run the datamart build"
        readout = replace(readout, notes=(*readout.notes, note))
    return readout


def write_readout(
    conn: psycopg.Connection, readout: Readout, dagster_run_id: str | None = None
) -> int:
    """Keep `readout` in governance.experiment_readouts; returns its readout_id."""
    with conn.transaction():
        row = conn.execute(
            "insert into governance.experiment_readouts (experiment_id, readout, dagster_run_id) "
            "values (%s, %s, %s) returning readout_id",
            (readout.experiment.experiment_id, Jsonb(readout.as_dict()), dagster_run_id),
        ).fetchone()
    if row is None:  # insert ... returning yields its row
        raise RuntimeError("governance.experiment_readouts returned no readout_id")
    return int(row[0])


def latest_readout(conn: psycopg.Connection, experiment_id: int) -> dict | None:
    """The newest kept readout of an experiment (Readout.as_dict, with when, by which run and
    its readout_id), or None."""
    row = conn.execute(
        "select readout, computed_at, dagster_run_id, readout_id "
        "from governance.experiment_readouts where experiment_id = %s "
        "order by computed_at desc, readout_id desc limit 1",
        (experiment_id,),
    ).fetchone()
    if row is None:
        return None
    readout, computed_at, run_id, readout_id = row
    return {
        **readout,
        "computed_at": computed_at.isoformat(),
        "dagster_run_id": run_id,
        "readout_id": readout_id,
    }
