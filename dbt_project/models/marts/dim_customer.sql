-- One row per known customer, identified only by a keyed hash of the shop's id.
with events as (
    select * from {{ ref('stg_events') }}
    where customer_id is not null
),

orders as (
    select * from {{ ref('stg_order_lines') }}
    where customer_id is not null and not is_cancellation
),

country_lines as (
    select
        customer_id,
        country,
        count(*) as order_lines
    from orders
    group by customer_id, country
),

-- The country a customer orders to most often (ties: alphabetical).
countries as (
    select distinct on (customer_id)
        customer_id,
        country
    from country_lines
    order by customer_id asc, order_lines desc, country asc
),

activity as (
    select
        customer_id,
        min(event_time) as first_seen_at,
        max(event_time) as last_seen_at,
        count(distinct session_id) as sessions
    from events
    group by customer_id
)

select
    {{ pii_hash('activity.customer_id') }} as customer_key,
    countries.country,
    activity.first_seen_at,
    activity.last_seen_at,
    activity.sessions
from activity
left join countries on activity.customer_id = countries.customer_id
