{{ config(materialized='incremental', unique_key='event_id', incremental_strategy='delete+insert') }}
-- One row per search, with its filters and how many products it returned.
with searches as (
    select * from {{ ref('stg_events') }}
    where event_type = 'search_performed' and {{ new_quality_batches() }}
)

select
    event_id,
    {{ pii_hash('customer_id') }} as customer_key,
    session_id,
    event_time as searched_at,
    event_date as search_date,
    payload ->> 'query' as query,
    (payload ->> 'filter_price_min')::double precision as filter_price_min,
    (payload ->> 'filter_price_max')::double precision as filter_price_max,
    payload ->> 'filter_category' as filter_category,
    payload ->> 'filter_customization' as filter_customization,
    (payload ->> 'filter_in_stock')::boolean as filter_in_stock,
    jsonb_array_length(coalesce(payload -> 'result_product_ids', '[]'::jsonb)) as results,
    jsonb_array_length(coalesce(payload -> 'result_product_ids', '[]'::jsonb)) = 0 as is_zero_result,
    quality_batch_id
from searches
