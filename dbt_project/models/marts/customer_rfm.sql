-- Recency, frequency and monetary value per customer, net of cancellations, scored 1-5
-- (5 best) against the other customers, as of the latest order in the data.
with netted as (
    select * from {{ ref('int_order_lines_netted') }}
    where customer_id is not null
),

per_customer as (
    select
        customer_id,
        max(ordered_at) as last_order_at,
        count(distinct order_id) filter (where not is_unmatched_cancellation) as orders,
        sum(net_amount) as monetary
    from netted
    group by customer_id
),

as_of as (
    select max(last_order_at) as as_of_at from per_customer
),

scored as (
    select
        per_customer.*,
        extract(day from as_of.as_of_at - per_customer.last_order_at)::int as recency_days,
        ntile(5) over (order by per_customer.last_order_at) as recency_score,
        ntile(5) over (order by per_customer.orders) as frequency_score,
        ntile(5) over (order by per_customer.monetary) as monetary_score
    from per_customer
    cross join as_of
)

select
    {{ pii_hash('customer_id') }} as customer_key,
    last_order_at,
    recency_days,
    orders as frequency,
    round(monetary::numeric, 2) as monetary,
    recency_score,
    frequency_score,
    monetary_score,
    case
        when recency_score >= 4 and frequency_score >= 4 then 'champions'
        when recency_score >= 3 and frequency_score >= 3 then 'loyal'
        when recency_score >= 4 then 'new or returning'
        when recency_score <= 2 and frequency_score >= 3 then 'at risk'
        else 'hibernating'
    end as segment
from scored
