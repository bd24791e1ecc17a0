{{ config(meta={'dagster': {'ref': {'name': 'fct_order_lines'}}}) }}
-- Every order line of the clean layer is in fct_order_lines exactly once, and nothing else is:
-- one row per source line whose counts differ. Then the totals must agree to the penny.
-- Up to the quality batch the fact has loaded: a live stream commits new lines while the build
-- runs, and those are the next build's, not missing.
with loaded as (
    select coalesce(max(quality_batch_id), 0) as upto from {{ ref('fct_order_lines') }}
),

lines as (
    select order_lines.*
    from {{ source('quality', 'order_lines_clean') }} as order_lines
    inner join {{ source('quality', 'events_clean') }} as events
        on
            order_lines.topic = events.topic
            and order_lines."partition" = events."partition"
            and order_lines."offset" = events."offset"
    where events.quality_batch_id <= (select loaded.upto from loaded)
),

clean as (
    select
        topic as source_topic,
        "partition" as source_partition,
        "offset" as source_offset,
        line_id,
        count(*) as n
    from lines
    group by 1, 2, 3, 4
),

fact as (
    select
        source_topic,
        source_partition,
        source_offset,
        line_id,
        count(*) as n
    from {{ ref('fct_order_lines') }}
    group by 1, 2, 3, 4
),

line_mismatches as (
    select
        coalesce(clean.line_id, fact.line_id) as line_id,
        coalesce(clean.n, 0) as in_clean,
        coalesce(fact.n, 0) as in_fact
    from clean
    full outer join fact
        on
            clean.source_topic = fact.source_topic
            and clean.source_partition = fact.source_partition
            and clean.source_offset = fact.source_offset
            and clean.line_id = fact.line_id
    where coalesce(clean.n, 0) <> 1 or coalesce(fact.n, 0) <> 1
),

totals as (
    select
        (
            select round(sum(round(quantity::numeric * unit_price::numeric, 4)), 2)
            from lines
        ) as clean_amount,
        (select round(sum(line_amount), 2) from {{ ref('fct_order_lines') }}) as fact_amount
)

select
    line_id,
    in_clean,
    in_fact,
    null::numeric as clean_amount,
    null::numeric as fact_amount
from line_mismatches
union all
select
    'totals' as line_id,
    null as in_clean,
    null as in_fact,
    clean_amount,
    fact_amount
from totals
where clean_amount is distinct from fact_amount
