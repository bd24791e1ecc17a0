-- One row per browsing session: what its customer did, and when.
with events as (
    select * from {{ ref('stg_events') }}
    where session_id is not null
)

select
    session_id,
    min(customer_id) as customer_id,
    min(event_time) as started_at,
    max(event_time) as ended_at,
    count(*) filter (where event_type = 'product_viewed') as product_views,
    count(*) filter (where event_type = 'search_performed') as searches,
    count(*) filter (where event_type = 'cart_updated') as cart_updates,
    count(*) filter (where event_type = 'order_placed') as orders,
    max(quality_batch_id) as quality_batch_id
from events
group by session_id
