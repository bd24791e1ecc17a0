-- Orders net of their cancellations, one row per (order, product).
-- A cancellation names the order it cancels when the shop knows it (cancels_order_id);
-- otherwise it cancels the same customer's latest earlier order of that product, which is how
-- the Online Retail shop records them (a "C" invoice with no reference). A cancellation with
-- no such order stays as a row of its own, marked unmatched, so no quantity is lost.
{{ config(
    materialized='incremental', unique_key=['order_id', 'product_id'], incremental_strategy='delete+insert'
) }}
-- depends_on: {{ ref('stg_order_lines') }}
-- Incremental: a new line can change the netting of its (customer, product) pair only, so each
-- build recomputes just the pairs that new quality batches touched.
with lines as (
    select * from {{ ref('stg_order_lines') }}
    {% if is_incremental() %}
        where (product_id, coalesce(customer_id, '')) in (
            select
                new_lines.product_id,
                coalesce(new_lines.customer_id, '') as customer_id
            from {{ ref('stg_order_lines') }} as new_lines
            where {{ new_quality_batches('new_lines.quality_batch_id') }}
        )
    {% endif %}
),

ordered as (
    select
        customer_id,
        product_id,
        event_time,
        order_id as own_order_id,
        is_cancellation,
        quantity,
        unit_price,
        quality_batch_id,
        case when is_cancellation then null else order_id end as placed_order_id,
        case when is_cancellation then cancels_order_id end as named_order_id,
        -- A running count of placed lines: each cancellation shares its group with the
        -- latest placed line before it.
        count(case when not is_cancellation then 1 end) over (
            partition by customer_id, product_id
            order by event_time, is_cancellation
            rows unbounded preceding
        ) as placed_group
    from lines
),

matched as (
    select
        *,
        coalesce(
            named_order_id,
            case
                when customer_id is not null then
                    first_value(placed_order_id) over (
                        partition by customer_id, product_id, placed_group
                        order by event_time, is_cancellation
                    )
            end
        ) as matched_order_id
    from ordered
)

select
    product_id,
    coalesce(matched_order_id, own_order_id) as order_id,
    min(customer_id) as customer_id,
    min(event_time) as ordered_at,
    bool_and(is_cancellation) as is_unmatched_cancellation,
    sum(quantity) filter (where not is_cancellation) as ordered_quantity,
    coalesce(sum(quantity) filter (where is_cancellation), 0) as cancelled_quantity,
    sum(quantity) as net_quantity,
    sum(quantity * unit_price) as net_amount,
    max(quality_batch_id) as quality_batch_id
from matched
group by coalesce(matched_order_id, own_order_id), product_id
