-- One row per released exposure: what the serving API showed, to whom, from which model.
with events_clean as (
    select * from {{ source('quality', 'events_clean') }}
    where event_type = 'recommendation_exposed'
)

select
    event_id,
    event_time as exposed_at,
    quality_batch_id,
    payload ->> 'recommendation_id' as recommendation_id,
    payload ->> 'customer_key' as customer_key,
    payload ->> 'session_id' as session_id,
    payload ->> 'route' as route,
    payload ->> 'variant' as variant,
    payload ->> 'model_name' as model_name,
    payload ->> 'model_version' as model_version,
    payload -> 'items' as items,
    (payload ->> 'experiment_id')::bigint as experiment_id,
    payload ->> 'shadow_model_version' as shadow_model_version,
    -- An absent shadow is a JSON null in the payload; SQL null reads better downstream.
    nullif(payload -> 'shadow_items', 'null'::jsonb) as shadow_items,
    (event_time at time zone 'UTC')::date as exposure_date
from events_clean
