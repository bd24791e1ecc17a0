{{ config(materialized='incremental', unique_key='recommendation_id', incremental_strategy='delete+insert') }}
-- One row per recommendations response the API served, keyed by its recommendation_id.
with exposures as (
    select * from {{ ref('stg_exposures') }}
    where {{ new_quality_batches() }}
)

select
    recommendation_id,
    customer_key,
    session_id,
    route,
    variant,
    model_name,
    model_version,
    exposed_at,
    exposure_date,
    items,
    quality_batch_id,
    jsonb_array_length(items) as items_shown,
    coalesce(jsonb_path_query_array(items, '$[*].product_id'), '[]'::jsonb) as product_ids,
    jsonb_array_length(
        coalesce(jsonb_path_query_array(items, '$[*] ? (@.because.size() > 0)'), '[]'::jsonb)
    ) as items_from_session
from exposures
