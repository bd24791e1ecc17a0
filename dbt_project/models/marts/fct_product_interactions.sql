{{ config(materialized='incremental', unique_key='interaction_key', incremental_strategy='delete+insert') }}
-- One row per thing a known customer did with a product: viewed it, added it to the cart, or
-- bought it (one row per purchased line). The ML platform's training data. Incremental by
-- quality batch.
with events as (
    select * from {{ ref('stg_events') }}
    where
        event_type in ('product_viewed', 'cart_updated')
        and customer_id is not null
        and {{ new_quality_batches() }}
),

purchases as (
    select * from {{ ref('stg_order_lines') }}
    where
        event_type = 'order_placed'
        and customer_id is not null
        and {{ new_quality_batches() }}
),

browsing as (
    select
        event_id as source_id,
        customer_id,
        product_id,
        session_id,
        event_time,
        quality_batch_id,
        null as order_id,
        case event_type when 'product_viewed' then 'view' else 'cart' end as interaction,
        coalesce((payload ->> 'quantity')::double precision, 1) as quantity,
        (payload ->> 'unit_price')::double precision as unit_price
    from events
),

bought as (
    select
        customer_id,
        product_id,
        session_id,
        event_time,
        quality_batch_id,
        quantity,
        unit_price,
        order_id,
        'purchase' as interaction,
        concat_ws('|', source_topic, source_partition, source_offset, line_id) as source_id
    from purchases
)

select
    md5(source_id) as interaction_key,
    {{ pii_hash('customer_id') }} as customer_key,
    product_id,
    interaction,
    event_time,
    quantity,
    unit_price,
    order_id,
    session_id,
    quality_batch_id
from browsing
union all
select
    md5(source_id) as interaction_key,
    {{ pii_hash('customer_id') }} as customer_key,
    product_id,
    interaction,
    event_time,
    quantity,
    unit_price,
    order_id,
    session_id,
    quality_batch_id
from bought
