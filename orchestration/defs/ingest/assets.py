"""Ingest layer: the Kafka topics as external assets, and the raw assets their batches land in."""

from datetime import timedelta

import dagster as dg

from orchestration.defs.common import OWNER
from orchestration.resources import KafkaResource, PostgresResource
from pulsemart.config import TOPIC_PARTITIONS

GROUP = "ingest"


def topic_asset_key(topic: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", topic.replace(".", "_")])


def raw_asset_key(topic: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", topic.replace(".", "_")])


def raw_op_name(topic: str) -> str:
    """The op behind the raw asset: run config addresses it by this name."""
    return "__".join(raw_asset_key(topic).path)


def ingest_job_name(topic: str) -> str:
    return f"ingest_{topic.replace('.', '_')}"


TOPIC_DESCRIPTIONS = {
    "shop.events": "Customer activity from the shop: views, searches, carts, orders, "
    "cancellations. Keyed by customer_id. Lineage starts here.",
    "shop.catalog": "Catalog changes: products, prices, availability, customization options. "
    "Keyed by product_id.",
    "shop.exposures": "What the serving API showed: one recommendation_exposed event per "
    "recommendations response, produced by the API. Keyed by the shopper (hashed customer "
    "key, else the session).",
}


def topic_spec(topic: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=topic_asset_key(topic),
        description=TOPIC_DESCRIPTIONS[topic],
        group_name=GROUP,
        owners=[OWNER],
        kinds={"kafka"},
        tags={"layer": "stream", "lane": "near-real-time"},
        metadata={"topic": topic, "partitions": TOPIC_PARTITIONS[topic]},
    )


class IngestBatchConfig(dg.Config):
    """One offset range of one partition, as planned by the Kafka sensor."""

    partition: int
    start_offset: int
    max_events: int = 50_000
    max_seconds: float = 2.0


def build_raw_asset(topic: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=raw_asset_key(topic),
        deps=[topic_asset_key(topic)],
        group_name=GROUP,
        owners=[OWNER],
        kinds={"kafka", "postgres"},
        tags={"layer": "ingest", "lane": "near-real-time"},
        description=(
            f"Records of `{topic}` exactly as received, in `raw.events` (one row per topic, "
            "partition and offset). Each run lands one offset range and moves `ingest.offsets` "
            "in the same transaction, so nothing is stored twice or lost."
        ),
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(minutes=15), warn_window=timedelta(minutes=5)
        ),
    )
    def raw_topic(
        context: dg.AssetExecutionContext,
        config: IngestBatchConfig,
        kafka: KafkaResource,
        postgres: PostgresResource,
    ) -> dg.MaterializeResult:
        # Imported here: the Kafka and PostgreSQL clients and the archive's pyarrow load in the
        # runs that land a batch, not in every process that loads the streaming location.
        from pulsemart.stream.archive import archive_after_ingest
        from pulsemart.stream.ingest import BatchPlan, ingest_batch

        plan = BatchPlan(
            topic, config.partition, config.start_offset, config.max_events, config.max_seconds
        )
        with kafka.consumer() as consumer, postgres.connection() as conn:
            result = ingest_batch(conn, consumer, plan, run_id=context.run.run_id)
            # After the commit: copy the batch to the object store (never fails the run).
            archive = archive_after_ingest(postgres.settings.get(), conn, result.batch_id)
        if archive.get("archive_error"):
            context.log.warning(
                f"{topic}[{config.partition}] batch {result.batch_id} stored but "
                f"not archived (retried later): {archive['archive_error']}"
            )
        lag_after = max(0, kafka.end_offsets(topic).get(config.partition, 0) - result.next_offset)
        context.log.info(
            f"{topic}[{config.partition}] {result.status}: offsets "
            f"{result.start_offset}..{result.next_offset} ({result.records} records)"
        )
        seconds = result.read_seconds + result.write_seconds
        return dg.MaterializeResult(
            metadata={
                "partition": config.partition,
                "start_offset": result.start_offset,
                "next_offset": result.next_offset,
                "records": result.records,
                "bytes": result.bytes,
                "status": result.status,
                "lag_after": lag_after,
                "read_seconds": round(result.read_seconds, 3),
                "write_seconds": round(result.write_seconds, 3),
                "records_per_second": round(result.records / seconds, 1) if seconds else 0.0,
                "batch_id": result.batch_id or -1,
                **archive,
            }
        )

    return raw_topic


TOPIC_SPECS = [topic_spec(topic) for topic in TOPIC_PARTITIONS]
RAW_ASSETS = {topic: build_raw_asset(topic) for topic in TOPIC_PARTITIONS}
INGEST_JOBS = {
    topic: dg.define_asset_job(
        ingest_job_name(topic),
        selection=[raw_asset_key(topic)],
        description=f"Land one planned offset range of {topic} in raw.events.",
        # The step runs in the run's own process: a subprocess per step would add seconds of
        # start-up to every micro-batch.
        executor_def=dg.in_process_executor,
        tags={"pulsemart/pool": "ingest"},
    )
    for topic in TOPIC_PARTITIONS
}
