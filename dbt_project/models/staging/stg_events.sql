-- One row per released event, with the envelope and common payload fields as columns.
with events_clean as (
    select * from {{ source('quality', 'events_clean') }}
)

select
    topic as source_topic,
    "partition" as source_partition,
    "offset" as source_offset,
    event_id,
    event_type,
    event_time,
    customer_id,
    product_id,
    payload,
    decision as dq_decision,
    confidence as dq_confidence,
    score as dq_score,
    repairs,
    rule_set_version,
    quality_batch_id,
    decided_at,
    (event_time at time zone 'UTC')::date as event_date,
    payload ->> 'session_id' as session_id,
    payload ->> 'source' as event_source,
    -- The response a view, cart change or order says it came from; as sent, checked downstream.
    payload ->> 'recommendation_id' as recommendation_id
from events_clean
-- Exposures are the API's record of what it showed, not the shop's activity.
where event_type <> 'recommendation_exposed'
