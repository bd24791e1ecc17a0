{{ config(materialized='incremental', unique_key='order_line_key', incremental_strategy='delete+insert') }}
-- One row per released order line (accepted or fixed), cancellations included with negative
-- quantities so sums net them. Incremental: each build adds the quality batches released since.
with lines as (
    select * from {{ ref('stg_order_lines') }}
    where {{ new_quality_batches() }}
)

select
    md5(concat_ws('|', source_topic, source_partition, source_offset, line_id)) as order_line_key,
    line_id,
    order_id,
    cancels_order_id,
    {{ pii_hash('customer_id') }} as customer_key,
    md5(product_id) as product_key,
    product_id,
    event_date as order_date,
    event_time as ordered_at,
    country,
    currency,
    quantity,
    unit_price,
    round(quantity::numeric * unit_price::numeric, 4) as line_amount,
    is_cancellation,
    dq_decision,
    dq_confidence,
    rule_set_version,
    source_topic,
    source_partition,
    source_offset,
    quality_batch_id
from lines
