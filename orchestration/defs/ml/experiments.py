"""The recommender's online experiment in Dagster: its readout as an asset, three checks on it,
and the schedule that refreshes it while an experiment runs.

`ml/experiment_readout` reads the running experiment (else the latest) from
marts.agg_experiment_daily, keeps the readout in governance.experiment_readouts and shows it.
The checks judge that same readout in the same step, so a check never looks at figures other
than the ones just kept. The conversion guardrail acts rather than only reports: a challenger
that costs purchases is taken off the shop at once (audited), and a person decides what next.
The figures are pulsemart.ml_store.experiment_readout's, the verdicts online_gate's.
"""

import dagster as dg
import psycopg

from ml.experiment_stats import SRM_ALPHA
from ml.names import RECOMMENDER
from orchestration.defs.ml.common import GROUP, meta, ml_asset
from orchestration.defs.ml.reports import readout_markdown
from orchestration.resources import PostgresResource, PulsemartSettings
from pulsemart.config import Settings
from pulsemart.ml_store import experiment_readout as readouts
from pulsemart.ml_store import online_gate as gates
from pulsemart.ml_store.experiment_readout import CHAMPION, Readout
from pulsemart.ml_store.experiments import Experiment, ExperimentError, end, latest, running

EXPERIMENT_READOUT = dg.AssetKey([GROUP, "experiment_readout"])
AGG_EXPERIMENT_DAILY = dg.AssetKey(["datamart", "agg_experiment_daily"])
SAMPLE_RATIO = "experiment_sample_ratio"
MIN_EXPOSURES = "experiment_min_exposures"
GUARDRAIL = "experiment_guardrail"
GUARDRAIL_ACTOR = "dagster experiment_guardrail"
EVERY_15_MINUTES = "*/15 * * * *"
NO_EXPERIMENT = {"note": f"no experiment on {RECOMMENDER} yet"}


def sample_ratio_result(readout: Readout | None) -> dg.AssetCheckResult:
    """Fails (ERROR) when the exposures per arm depart from the configured shares, p < 0.001."""
    if readout is None:
        return dg.AssetCheckResult(check_name=SAMPLE_RATIO, passed=True, metadata=NO_EXPERIMENT)
    srm = readout.as_dict()["sample_ratio"]
    return dg.AssetCheckResult(
        check_name=SAMPLE_RATIO,
        passed=not srm["mismatch"],
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=meta(
            {
                "p_value": srm["p_value"],
                "chi_square": srm["chi_square"],
                "alpha": SRM_ALPHA,
                "observed": dg.MetadataValue.json(srm["observed"]),
                "expected": dg.MetadataValue.json(srm["expected"]),
            }
        ),
    )


def min_exposures_result(readout: Readout | None, min_exposures: int) -> dg.AssetCheckResult:
    """Warns while an arm has fewer exposures than the online gate needs."""
    if readout is None:
        return dg.AssetCheckResult(check_name=MIN_EXPOSURES, passed=True, metadata=NO_EXPERIMENT)
    exposures = {a.variant: a.totals.exposures for a in readout.arms}
    short = sorted(arm for arm, n in exposures.items() if n < min_exposures)
    return dg.AssetCheckResult(
        check_name=MIN_EXPOSURES,
        passed=not short,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "min_exposures": min_exposures,
            "exposures": dg.MetadataValue.json(exposures),
            "short": ", ".join(short) or "none",
        },
    )


def guardrail_result(
    readout: Readout | None, breached: bool, reason: str, stopped: Experiment | None
) -> dg.AssetCheckResult:
    """Fails (ERROR) when a challenger converts significantly worse; says whether it stopped
    the experiment just now."""
    if readout is None:
        return dg.AssetCheckResult(check_name=GUARDRAIL, passed=True, metadata=NO_EXPERIMENT)
    return dg.AssetCheckResult(
        check_name=GUARDRAIL,
        passed=not breached,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "reason": reason,
            "stopped_now": stopped is not None,
            "status": (stopped or readout.experiment).status,
        },
    )


def stop_if_breached(
    conn: psycopg.Connection, readout: Readout, breached: bool, reason: str, details: dict
) -> Experiment | None:
    """End the experiment as `stopped` when the guardrail is breached and it still runs;
    the ended experiment, or None when nothing was stopped."""
    experiment = readout.experiment
    current = running(conn, experiment.model_name)
    if not breached or current is None or current.experiment_id != experiment.experiment_id:
        return None
    try:
        return end(conn, experiment.model_name, "stopped", GUARDRAIL_ACTOR, reason, details)
    except ExperimentError:  # ended by someone else since: nothing left to stop
        return None


@ml_asset(
    "experiment_readout",
    {"postgres"},
    deps=[AGG_EXPERIMENT_DAILY],
    description="The recommender's running (else latest) online experiment read from "
    "marts.agg_experiment_daily: per arm exposures, CTR, conversion and revenue per exposure "
    "with intervals, each challenger's lift over the champion, the sample ratio; kept in "
    "governance.experiment_readouts. The guardrail stops an experiment that hurts conversion.",
    check_specs=[
        dg.AssetCheckSpec(
            SAMPLE_RATIO,
            asset=EXPERIMENT_READOUT,
            description="Exposures per arm match the configured shares (chi-square, fails "
            f"at p < {SRM_ALPHA:g}: the assignment or the logging is broken).",
        ),
        dg.AssetCheckSpec(
            MIN_EXPOSURES,
            asset=EXPERIMENT_READOUT,
            description="Every arm has PULSEMART_EXPERIMENT_MIN_EXPOSURES exposures, what the "
            "online gate needs (warns until then).",
        ),
        dg.AssetCheckSpec(
            GUARDRAIL,
            asset=EXPERIMENT_READOUT,
            description="No challenger converts significantly worse than the champion (at "
            "PULSEMART_EXPERIMENT_ALPHA); when one does, the running experiment is stopped.",
        ),
    ],
)
def experiment_readout(
    context: dg.AssetExecutionContext, postgres: PostgresResource, pulsemart: PulsemartSettings
) -> dg.MaterializeResult:
    settings = pulsemart.get()
    alpha, run_id = settings.experiment_alpha, context.run.run_id
    stopped = None
    with postgres.connection() as conn, conn.transaction():
        experiment = latest(conn, RECOMMENDER)
        if experiment is None:
            return dg.MaterializeResult(
                metadata=NO_EXPERIMENT,
                check_results=[
                    sample_ratio_result(None),
                    min_exposures_result(None, settings.experiment_min_exposures),
                    guardrail_result(None, False, "", None),
                ],
            )
        readout = readouts.compute_readout(conn, experiment, alpha)
        readout_id = readouts.write_readout(conn, readout, run_id)
        breached, reason = gates.guardrail(readout, alpha)
        details = {"readout_id": readout_id, "dagster_run_id": run_id}
        stopped = stop_if_breached(conn, readout, breached, reason, details)
    return dg.MaterializeResult(
        metadata=readout_metadata(readout, readout_id, settings, stopped),
        check_results=[
            sample_ratio_result(readout),
            min_exposures_result(readout, settings.experiment_min_exposures),
            guardrail_result(readout, breached, reason, stopped),
        ],
    )


def readout_metadata(
    readout: Readout, readout_id: int, settings: Settings, stopped: Experiment | None = None
) -> dict:
    """The readout's tables, and what the online gate would say of each challenger now."""
    e = readout.experiment
    verdicts = {
        f"online_gate_{arm.variant}": gates.online_gate(
            readout,
            arm.variant,
            settings.experiment_metric,
            settings.experiment_alpha,
            settings.experiment_min_exposures,
        )
        for arm in readout.arms
        if arm.variant != CHAMPION
    }
    return meta(
        {
            "experiment_id": e.experiment_id,
            "status": (stopped or e).status,
            "shadow": e.shadow,
            "champion_version": e.champion_version,
            "readout_id": readout_id,
            "exposures": sum(a.totals.exposures for a in readout.arms),
            "sample_ratio_p": readout.sample_ratio.p_value,
            "readout": dg.MetadataValue.md(readout_markdown(readout.as_dict())),
            **{
                key: f"{'passed' if d.passed else 'not passed'}: {d.reason}"
                for key, d in verdicts.items()
            },
        }
    )


EXPERIMENT_JOB = dg.define_asset_job(
    "ml_experiment_readout",
    selection=[EXPERIMENT_READOUT],
    executor_def=dg.in_process_executor,
    description="Read the recommender's online experiment, keep the readout, run its checks.",
)


@dg.schedule(
    name="ml_experiment_readout_schedule",
    job=EXPERIMENT_JOB,
    cron_schedule=EVERY_15_MINUTES,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes while an experiment runs on the recommender: its readout, "
    "so the guardrail acts within 15 minutes of the datamart showing the harm.",
)
def experiment_readout_schedule(postgres: PostgresResource):
    with postgres.connection() as conn:
        current = running(conn, RECOMMENDER)
    if current is None:
        return dg.SkipReason(f"no experiment is running on {RECOMMENDER}")
    return dg.RunRequest(tags={"pulsemart/experiment_id": str(current.experiment_id)})
