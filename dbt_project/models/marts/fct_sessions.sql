{{ config(materialized='incremental', unique_key='session_id', incremental_strategy='delete+insert') }}
-- depends_on: {{ ref('stg_events') }}
-- One row per session. Incremental: sessions touched by new quality batches are recomputed
-- whole, since a session's events can span batches.
with sessions as (
    select * from {{ ref('int_sessions') }}
    {% if is_incremental() %}
        where session_id in (
            select new_events.session_id from {{ ref('stg_events') }} as new_events
            where
                new_events.session_id is not null
                and {{ new_quality_batches('new_events.quality_batch_id') }}
        )
    {% endif %}
)

select
    session_id,
    {{ pii_hash('customer_id') }} as customer_key,
    started_at,
    ended_at,
    (started_at at time zone 'UTC')::date as session_date,
    extract(epoch from ended_at - started_at)::double precision as duration_seconds,
    product_views,
    searches,
    cart_updates,
    orders,
    orders > 0 as converted,
    quality_batch_id
from sessions
