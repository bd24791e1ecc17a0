"""Quality layer: the rule engine decides every raw record; Pandera contracts gate the result."""

from datetime import timedelta

import dagster as dg

from orchestration.defs.common import OWNER
from orchestration.defs.ingest.assets import raw_asset_key
from orchestration.defs.quality.summary import RunSummary
from orchestration.interrupts import stop_requested
from orchestration.resources import PostgresResource
from pulsemart.config import TOPIC_PARTITIONS

GROUP = "quality"
TAGS = {"layer": "quality", "lane": "near-real-time"}
QUALITY_KEYS = [
    dg.AssetKey(["quality", name]) for name in ("events_clean", "order_lines_clean", "quarantine")
]
EVENTS_CLEAN, ORDER_LINES_CLEAN, QUARANTINE = QUALITY_KEYS


class QualityConfig(dg.Config):
    max_records_per_batch: int = 50_000


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            EVENTS_CLEAN,
            deps=[raw_asset_key(t) for t in TOPIC_PARTITIONS],
            group_name=GROUP,
            owners=[OWNER],
            kinds={"pandas", "pandera", "postgres"},
            tags=TAGS,
            description="Accepted and fixed events (`quality.events_clean`): repaired payload, "
            "quality score, repair confidence, decision and the repairs made.",
            freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=15)),
        ),
        dg.AssetSpec(
            ORDER_LINES_CLEAN,
            deps=[EVENTS_CLEAN],
            group_name=GROUP,
            owners=[OWNER],
            kinds={"pandas", "postgres"},
            tags=TAGS,
            description="One row per order line of accepted and fixed orders "
            "(`quality.order_lines_clean`), quantity and unit price as found and as repaired.",
        ),
        dg.AssetSpec(
            QUARANTINE,
            deps=[raw_asset_key(t) for t in TOPIC_PARTITIONS],
            group_name=GROUP,
            owners=[OWNER],
            kinds={"postgres"},
            tags=TAGS,
            description="Records held back with their reasons (`quality.quarantine`; order lines in "
            "the view `quality.quarantined_lines`). `pulsemart quarantine replay` "
            "re-decides them after a rule change.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "contract",
            asset=EVENTS_CLEAN,
            blocking=True,
            description="Every event released in this run satisfies its Pandera contract.",
        ),
        dg.AssetCheckSpec(
            "conservation",
            asset=EVENTS_CLEAN,
            blocking=True,
            description="Every decided raw record has exactly one decision: "
            "accepted, fixed, quarantined or held.",
        ),
    ],
    can_subset=False,
)
def quality_decisions(
    context: dg.AssetExecutionContext, config: QualityConfig, postgres: PostgresResource
):
    # Imported here: the rule engine loads pandas and pandera, which the streaming location's
    # import (paid by the code server and every run, ingest runs too) need not load.
    from pulsemart.store.contract_gate import conservation_gaps
    from pulsemart.store.quality import decide_until_done

    summary = RunSummary()

    def add_batch(batch) -> None:
        summary.add(batch)
        # The stop signal's own exception may have been lost (see orchestration.interrupts):
        # the batch just committed is the last.
        if stop_requested():
            raise dg.DagsterExecutionInterruptedError()

    with postgres.connection() as conn:
        decide_until_done(conn, config.max_records_per_batch, context.run.run_id, add_batch)
        gaps = conservation_gaps(conn)
    totals = summary.totals()
    context.log.info(f"quality decisions: {totals}")
    if summary.contract_failures:
        context.log.error(
            f"released events break their contract: {dict(summary.contract_failures)}; "
            f"samples: {summary.samples}"
        )
    if not gaps.empty:
        context.log.error(f"decisions out of balance: {gaps.to_dict('records')}")
    version = {"rule_set_version": summary.rule_set_version}
    yield dg.MaterializeResult(
        asset_key=EVENTS_CLEAN,
        metadata={**version, **totals, "rule_counts": dict(summary.rule_counts)},
    )
    yield dg.MaterializeResult(asset_key=ORDER_LINES_CLEAN, metadata=version)
    yield dg.MaterializeResult(
        asset_key=QUARANTINE,
        metadata={
            **version,
            "quarantined": totals["quarantined"],
            "quarantined_by_contract": dict(summary.quarantined_by_contract),
        },
    )
    yield dg.AssetCheckResult(
        check_name="contract",
        asset_key=EVENTS_CLEAN,
        passed=not summary.contract_failures,
        metadata={
            "failure_counts": dict(summary.contract_failures),
            "samples": summary.samples,
            "quarantined_by_contract": dict(summary.quarantined_by_contract),
        },
    )
    yield dg.AssetCheckResult(
        check_name="conservation",
        asset_key=EVENTS_CLEAN,
        passed=gaps.empty,
        metadata={**totals, "partitions_out_of_balance": gaps.to_dict("records")},
    )


# Its own job, launched by the quality sensor whenever raw records wait: ingest runs stay short
# (landing only), and one quality run decides everything landed since the last one.
DECIDE_QUALITY_JOB = dg.define_asset_job(
    "decide_quality",
    selection=QUALITY_KEYS,
    description="Decide every raw record not yet decided (accepted, fixed, quarantined or held).",
    executor_def=dg.in_process_executor,
    tags={"pulsemart/pool": "quality"},
)
