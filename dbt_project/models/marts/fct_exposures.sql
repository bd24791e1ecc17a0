{{ config(
    materialized='incremental',
    unique_key='recommendation_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns'
) }}
-- One row per recommendations response the API served, keyed by its recommendation_id.
-- New columns are appended: a deployment built before them keeps its rows (null there).
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
    experiment_id,
    shadow_model_version,
    quality_batch_id,
    jsonb_array_length(items) as items_shown,
    coalesce({{ product_ids_of('items') }}, '[]'::jsonb) as product_ids,
    -- Null without a shadow, so "no shadow" and "the shadow had nothing to show" differ.
    {{ product_ids_of('shadow_items') }} as shadow_product_ids,
    jsonb_array_length(
        coalesce(jsonb_path_query_array(items, '$[*] ? (@.because.size() > 0)'), '[]'::jsonb)
    ) as items_from_session
from exposures
