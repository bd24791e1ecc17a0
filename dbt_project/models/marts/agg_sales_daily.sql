-- Sales by day, country and category: placed, cancelled and net.
with lines as (
    select * from {{ ref('fct_order_lines') }}
),

products as (
    select * from {{ ref('dim_product') }}
    where is_current
)

select
    lines.order_date,
    coalesce(lines.country, 'unknown') as country,
    coalesce(products.category, 'uncategorized') as category,
    count(distinct lines.order_id) filter (where not lines.is_cancellation) as orders,
    count(*) filter (where not lines.is_cancellation) as order_lines,
    count(distinct lines.customer_key) as customers,
    coalesce(sum(lines.quantity) filter (where not lines.is_cancellation), 0) as units_sold,
    coalesce(sum(lines.line_amount) filter (where not lines.is_cancellation), 0) as gross_revenue,
    coalesce(sum(lines.line_amount) filter (where lines.is_cancellation), 0) as cancelled_revenue,
    sum(lines.line_amount) as net_revenue
from lines
left join products on lines.product_key = products.product_key
group by 1, 2, 3
