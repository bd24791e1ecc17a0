-- The shopping funnel per day: sessions that viewed, searched, carted and ordered.
with sessions as (
    select * from {{ ref('fct_sessions') }}
)

select
    session_date,
    count(*) as sessions,
    count(*) filter (where product_views > 0) as sessions_with_view,
    count(*) filter (where searches > 0) as sessions_with_search,
    count(*) filter (where cart_updates > 0) as sessions_with_cart,
    count(*) filter (where orders > 0) as sessions_with_order,
    round(count(*) filter (where orders > 0)::numeric / nullif(count(*), 0), 4) as conversion_rate
from sessions
group by session_date
