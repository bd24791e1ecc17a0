-- Records held back by the rules, one row each, with the first reason as the headline.
with quarantine as (
    select * from {{ source('quality', 'quarantine') }}
)

select
    topic as source_topic,
    "partition" as source_partition,
    "offset" as source_offset,
    event_id,
    event_type,
    reasons,
    score as dq_score,
    confidence as dq_confidence,
    rule_set_version,
    quality_batch_id,
    quarantined_at,
    released_at,
    reasons ->> 0 as first_reason,
    (quarantined_at at time zone 'UTC')::date as quarantined_date
from quarantine
