"""The run request for one planned ingest batch, shared by the Kafka sensor and by
`pulsemart ingest --until-caught-up` (orchestration/catch_up.py), so both launch the same job
with the same config and tags."""

import dagster as dg

from orchestration.defs.ingest.assets import raw_op_name

# An ingest run carries two tags: the pool (dagster.yaml caps its runs in flight) and its
# topic and partition (dagster.yaml allows one run per value). The start offset and attempt
# are in the run key and the run config, so the runs list stays readable.
POOL_TAG, POOL = "pulsemart/pool", "ingest"
PARTITION_TAG = "pulsemart/topic_partition"


def partition_tag(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def run_request_for(batch, job_name: str, max_seconds: float) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=batch.run_key,
        job_name=job_name,
        run_config={
            "ops": {
                raw_op_name(batch.topic): {
                    "config": {
                        "partition": batch.partition,
                        "start_offset": batch.start_offset,
                        "max_events": batch.max_events,
                        "max_seconds": max_seconds,
                    }
                }
            }
        },
        tags={POOL_TAG: POOL, PARTITION_TAG: partition_tag(batch.topic, batch.partition)},
    )
