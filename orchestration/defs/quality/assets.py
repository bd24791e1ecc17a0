"""Quality layer: the rule engine decides every raw record; Pandera contracts gate the result."""

from datetime import timedelta

import dagster as dg

from orchestration.defs.ingest.assets import OWNER, QUALITY_KEYS, raw_asset_key
from orchestration.resources import PostgresResource
from pulsemart.config import TOPIC_PARTITIONS
from pulsemart.store.contract_gate import conservation_gaps, contract_failures
from pulsemart.store.quality import decide_new_records

GROUP = "quality"
TAGS = {"layer": "quality", "lane": "near-real-time"}
EVENTS_CLEAN, ORDER_LINES_CLEAN, QUARANTINE = QUALITY_KEYS


class QualityConfig(dg.Config):
    max_records_per_batch: int = 50_000


@dg.multi_asset(
    specs=[
        dg.AssetSpec(EVENTS_CLEAN, deps=[raw_asset_key(t) for t in TOPIC_PARTITIONS], group_name=GROUP,
                     owners=[OWNER], kinds={"pandas", "pandera", "postgres"}, tags=TAGS,
                     description="Accepted and fixed events (`quality.events_clean`): repaired payload, "
                                 "quality score, repair confidence, decision and the repairs made.",
                     freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=15))),
        dg.AssetSpec(ORDER_LINES_CLEAN, deps=[EVENTS_CLEAN], group_name=GROUP, owners=[OWNER],
                     kinds={"pandas", "postgres"}, tags=TAGS,
                     description="One row per order line of accepted and fixed orders "
                                 "(`quality.order_lines_clean`), quantity and unit price as found and as repaired."),
        dg.AssetSpec(QUARANTINE, deps=[raw_asset_key(t) for t in TOPIC_PARTITIONS], group_name=GROUP,
                     owners=[OWNER], kinds={"postgres"}, tags=TAGS,
                     description="Records held back with their reasons (`quality.quarantine`; order lines in "
                                 "the view `quality.quarantined_lines`). `pulsemart quarantine replay` "
                                 "re-decides them after a rule change."),
    ],
    check_specs=[
        dg.AssetCheckSpec("contract", asset=EVENTS_CLEAN, blocking=True,
                          description="Every event released in this run satisfies its Pandera contract."),
        dg.AssetCheckSpec("conservation", asset=EVENTS_CLEAN, blocking=True,
                          description="Every decided raw record has exactly one decision: "
                                      "accepted, fixed, quarantined or held."),
    ],
    can_subset=False,
)
def quality_decisions(context: dg.AssetExecutionContext, config: QualityConfig, postgres: PostgresResource):
    totals = {"in": 0, "accepted": 0, "fixed": 0, "quarantined": 0, "held": 0}
    failures: dict[str, int] = {}
    samples: list[dict] = []
    released_by_contract: dict[str, int] = {}
    rule_counts: dict[str, int] = {}
    versions = set()
    with postgres.connection() as conn:
        while True:  # each pass is bounded; loop until every stored raw record is decided
            batch = decide_new_records(conn, config.max_records_per_batch, run_id=context.run.run_id)
            if batch.result is None or batch.records == 0:
                break
            result = batch.result
            versions.add(result.rule_set_version)
            for name in totals:
                totals[name] += result.conservation[name]
            meta = result.metadata()
            for key, n in meta["failure_counts"].items():
                released_by_contract[key] = released_by_contract.get(key, 0) + n
            for key, n in meta["rule_counts"].items():
                rule_counts[key] = rule_counts.get(key, 0) + n
            counts, found = contract_failures(result.clean["payload"].tolist())
            for key, n in counts.items():
                failures[key] = failures.get(key, 0) + n
            samples.extend(found)
            if result.held.shape[0] and batch.records == result.conservation["held"]:
                break  # only held records left: they wait for the catalog, not for another pass
        gaps = conservation_gaps(conn)
    context.log.info(f"quality decisions: {totals}")
    if failures:
        context.log.error(f"released events break their contract: {failures}; samples: {samples[:5]}")
    if not gaps.empty:
        context.log.error(f"decisions out of balance: {gaps.to_dict('records')}")
    common = {"rule_set_version": ", ".join(sorted(versions)) or "-"}
    yield dg.MaterializeResult(asset_key=EVENTS_CLEAN, metadata={
        **common, "records_in": totals["in"], "accepted": totals["accepted"], "fixed": totals["fixed"],
        "quarantined": totals["quarantined"], "held": totals["held"], "rule_counts": rule_counts})
    yield dg.MaterializeResult(asset_key=ORDER_LINES_CLEAN, metadata=common)
    yield dg.MaterializeResult(asset_key=QUARANTINE, metadata={
        **common, "quarantined": totals["quarantined"], "quarantined_by_contract": released_by_contract})
    yield dg.AssetCheckResult(check_name="contract", asset_key=EVENTS_CLEAN, passed=not failures,
                              metadata={"failure_counts": failures, "samples": samples[:5],
                                        "quarantined_by_contract": released_by_contract})
    yield dg.AssetCheckResult(check_name="conservation", asset_key=EVENTS_CLEAN, passed=gaps.empty,
                              metadata={**totals, "partitions_out_of_balance": gaps.to_dict("records")})
