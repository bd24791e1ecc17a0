"""The experiment readout asset on the embedded PostgreSQL: rows put into
marts.agg_experiment_daily as the datamart would build them, the asset materialized in
process, its checks judged; the guardrail stops a running experiment, audited."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from ml.names import RECOMMENDER
from orchestration.defs.ml.experiments import experiment_readout, experiment_readout_schedule
from orchestration.resources import build_resources
from pulsemart.ml_store.experiment_readout import latest_readout
from pulsemart.ml_store.experiments import end, find, running, start

pytestmark = pytest.mark.integration
ACTOR = "test_experiment_readout"
# The datamart's model (dbt_project/models/marts/agg_experiment_daily.sql); the readout reads
# its counts and sums only, so the rates and intervals stay null here.
MART_DDL = """
create table marts.agg_experiment_daily (
    exposure_date date, experiment_id bigint, variant text, model_version text,
    exposures bigint, clicks bigint, purchases bigint, revenue numeric, revenue_sq numeric,
    last_quality_batch_id bigint, experiment_day_key text, ctr double precision,
    ctr_low double precision, ctr_high double precision, conversion double precision,
    conversion_low double precision, conversion_high double precision,
    revenue_per_exposure double precision, revenue_per_exposure_low double precision,
    revenue_per_exposure_high double precision
)
"""


def _clear(db) -> None:
    db.rollback()
    if running(db, RECOMMENDER) is not None:
        end(db, RECOMMENDER, "stopped", ACTOR, "test clean-up")
    db.execute(
        "delete from serving.experiment_variants where experiment_id in "
        "(select experiment_id from serving.experiments where model_name = %s)",
        (RECOMMENDER,),
    )
    db.execute("delete from serving.experiments where model_name = %s", (RECOMMENDER,))
    db.commit()


@pytest.fixture
def mart(db):
    """An empty marts.agg_experiment_daily of the agreed shape (whatever an earlier datamart
    build left there), and no experiment on the recommender; both cleared afterwards."""
    _clear(db)
    kind = db.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'marts' and c.relname = 'agg_experiment_daily'"
    ).fetchone()
    if kind is not None:
        what = {"v": "view", "m": "materialized view"}.get(kind[0], "table")
        db.execute(f"drop {what} marts.agg_experiment_daily cascade")
    db.execute("create schema if not exists marts")
    db.execute(MART_DDL)
    db.commit()
    yield db
    db.rollback()
    db.execute("drop table if exists marts.agg_experiment_daily")
    db.commit()
    _clear(db)


def started(db, share: float = 0.5):
    experiment = start(db, RECOMMENDER, [("popularity", share)], ACTOR)
    db.commit()
    return experiment


def put(db, experiment_id: int, arms: dict[str, tuple[int, int, int, float]]) -> None:
    """Each arm's (exposures, clicks, purchases, revenue), split over two days as the mart
    would hold them; revenue squared as if each purchase brought the same amount."""
    rows = []
    for variant, (exposures, clicks, purchases, revenue) in arms.items():
        version = "popularity" if variant == "challenger" else None
        for day, part in ((date(2024, 5, 1), 0.4), (date(2024, 5, 2), 0.6)):
            n, c, p = (round(x * part) for x in (exposures, clicks, purchases))
            value = revenue * part
            square = value * value / p if p else 0.0
            rows.append((day, experiment_id, variant, version, n, c, p, value, square))
    with db.cursor() as cur:
        cur.executemany(
            "insert into marts.agg_experiment_daily (exposure_date, experiment_id, variant, "
            "model_version, exposures, clicks, purchases, revenue, revenue_sq) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    db.commit()


def materialize(db) -> tuple[dg.ExecuteInProcessResult, dict, dict]:
    db.rollback()
    result = dg.materialize(
        [experiment_readout], resources=build_resources(), instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("ml__experiment_readout")
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return result, {k: v.value for k, v in materialization.metadata.items()}, checks


def test_without_an_experiment_the_readout_says_so_and_every_check_passes(mart):
    _, metadata, checks = materialize(mart)
    assert metadata == {"note": f"no experiment on {RECOMMENDER} yet"}
    assert all(check.passed for check in checks.values()) and len(checks) == 3


def test_a_balanced_experiment_is_read_kept_and_passes_its_checks(mart):
    experiment = started(mart)
    put(mart, experiment.experiment_id, {"champion": (500, 50, 25, 500.0)})
    put(mart, experiment.experiment_id, {"challenger": (510, 60, 26, 520.0)})
    result, metadata, checks = materialize(mart)
    assert metadata["experiment_id"] == experiment.experiment_id
    assert metadata["status"] == "running" and metadata["exposures"] == 1010
    assert "| challenger | popularity | 50% | 510 | 60 |" in metadata["readout"]
    assert metadata["online_gate_challenger"].startswith("not passed: ctr challenger 0.1176")
    assert {name: c.passed for name, c in checks.items()} == {
        "experiment_sample_ratio": True,
        "experiment_min_exposures": True,
        "experiment_guardrail": True,
    }
    kept = latest_readout(mart, experiment.experiment_id)
    mart.rollback()
    assert kept["dagster_run_id"] == result.run_id and kept["readout_id"] == metadata["readout_id"]
    assert [(a["variant"], a["exposures"]) for a in kept["arms"]] == [
        ("champion", 500),
        ("challenger", 510),
    ]
    assert kept["comparisons"]["challenger"]["ctr"]["estimate"] == pytest.approx(60 / 510 - 0.1)


def test_a_skewed_split_fails_the_sample_ratio_check(mart):
    experiment = started(mart)
    put(mart, experiment.experiment_id, {"champion": (600, 60, 30, 0.0)})
    put(mart, experiment.experiment_id, {"challenger": (400, 40, 20, 0.0)})
    _, metadata, checks = materialize(mart)
    srm = checks["experiment_sample_ratio"]
    assert not srm.passed and srm.severity == dg.AssetCheckSeverity.ERROR
    assert srm.metadata["chi_square"].value == pytest.approx(40.0)
    assert checks["experiment_guardrail"].passed  # conversion 0.05 in both arms
    assert metadata["online_gate_challenger"].startswith("not passed: sample ratio mismatch")


def test_too_few_exposures_warn(mart):
    experiment = started(mart, share=0.1)
    put(mart, experiment.experiment_id, {"champion": (900, 90, 9, 0.0)})
    put(mart, experiment.experiment_id, {"challenger": (100, 10, 1, 0.0)})
    _, _, checks = materialize(mart)
    check = checks["experiment_min_exposures"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["short"].value == "challenger"
    assert checks["experiment_sample_ratio"].passed


def test_the_guardrail_stops_an_experiment_that_costs_conversion(mart):
    experiment = started(mart)
    put(mart, experiment.experiment_id, {"champion": (1000, 100, 50, 1000.0)})
    put(mart, experiment.experiment_id, {"challenger": (1000, 150, 30, 600.0)})
    result, metadata, checks = materialize(mart)
    guardrail = checks["experiment_guardrail"]
    assert not guardrail.passed and guardrail.severity == dg.AssetCheckSeverity.ERROR
    assert guardrail.metadata["stopped_now"].value is True
    assert "conversion challenger 0.0300 vs champion 0.0500" in guardrail.metadata["reason"].value
    assert metadata["status"] == "stopped"
    stopped = find(mart, experiment.experiment_id)
    assert stopped.status == "stopped" and stopped.ended_by == "dagster experiment_guardrail"
    assert stopped.end_reason.startswith("conversion significantly below the champion's")
    [(actor, details)] = mart.execute(
        "select actor, details from governance.audit_log where action = 'ml.experiment.stop' "
        "and (details->>'experiment_id')::bigint = %s",
        (experiment.experiment_id,),
    ).fetchall()
    mart.rollback()
    assert actor == "dagster experiment_guardrail"
    assert details["readout_id"] == metadata["readout_id"]
    assert details["dagster_run_id"] == result.run_id
    # Read again, the stopped experiment is still shown and the check still says why; nothing
    # is stopped twice.
    _, again, checks = materialize(mart)
    assert again["experiment_id"] == experiment.experiment_id and again["status"] == "stopped"
    assert checks["experiment_guardrail"].metadata["stopped_now"].value is False


def test_the_schedule_runs_only_while_an_experiment_runs(mart):
    with dg.build_schedule_context(resources=build_resources()) as context:
        skip = experiment_readout_schedule(context)
    assert isinstance(skip, dg.SkipReason) and "no experiment is running" in skip.skip_message
    experiment = started(mart)
    with dg.build_schedule_context(resources=build_resources()) as context:
        request = experiment_readout_schedule(context)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["pulsemart/experiment_id"] == str(experiment.experiment_id)
