-- One row per order line of a released order or cancellation, with its order's envelope.
with order_lines as (
    select * from {{ source('quality', 'order_lines_clean') }}
),

events as (
    select * from {{ ref('stg_events') }}
    where event_type in ('order_placed', 'order_cancelled')
)

select
    order_lines.topic as source_topic,
    order_lines."partition" as source_partition,
    order_lines."offset" as source_offset,
    order_lines.line_id,
    events.event_id,
    events.event_type,
    events.event_time,
    events.event_date,
    events.customer_id,
    events.session_id,
    order_lines.product_id,
    order_lines.quantity,
    order_lines.unit_price,
    order_lines.is_cancellation,
    events.dq_decision,
    events.dq_confidence,
    events.rule_set_version,
    events.quality_batch_id,
    coalesce(order_lines.order_id, events.payload ->> 'order_id') as order_id,
    events.payload ->> 'cancels_order_id' as cancels_order_id,
    events.payload ->> 'country' as country,
    events.payload ->> 'currency' as currency
from order_lines
inner join events
    on
        order_lines.topic = events.source_topic
        and order_lines."partition" = events.source_partition
        and order_lines."offset" = events.source_offset
