{{ config(
    materialized='incremental', unique_key=['event_date', 'event_type'], incremental_strategy='delete+insert'
) }}
-- Outcome events that echo a recommendation_id, per day and kind, by how the id fared
-- (attributed, malformed, unknown, unmatched: the outcome_attribution macro). An id that
-- attributes nothing never holds an event back upstream; it is counted here instead.
-- Incremental: a day is recounted when a new batch brings an outcome of that day, or an
-- exposure that an outcome of that day names (an outcome can land before its exposure).
with
{% if is_incremental() %}
    changed_days as (
        select new_outcomes.event_date
        from {{ ref('stg_events') }} as new_outcomes
        where
            new_outcomes.recommendation_id is not null
            and new_outcomes.event_type in ('product_viewed', 'cart_updated', 'order_placed')
            and {{ newer_than_last_build('new_outcomes.quality_batch_id') }}
        union distinct
        select named.event_date
        from {{ ref('stg_events') }} as named
        inner join {{ ref('stg_exposures') }} as new_exposures
            on named.recommendation_id = new_exposures.recommendation_id
        where
            named.event_type in ('product_viewed', 'cart_updated', 'order_placed')
            and {{ newer_than_last_build('new_exposures.quality_batch_id') }}
    ),
{% endif %}

outcome_events as (
    select * from {{ ref('stg_events') }}
    where
        event_type in ('product_viewed', 'cart_updated', 'order_placed')
        and recommendation_id is not null
        {% if is_incremental() %}
            and event_date in (select changed_days.event_date from changed_days)
        {% endif %}
),

exposures as (
    select * from {{ ref('stg_exposures') }}
),

order_lines as (
    select * from {{ ref('stg_order_lines') }}
    where event_type = 'order_placed'
),

attribution as (
    {{ outcome_attribution('outcome_events', 'exposures', 'order_lines') }}
)

select
    event_date,
    event_type,
    count(distinct event_id) as with_recommendation_id,
    count(distinct event_id) filter (where attribution = 'attributed') as attributed,
    count(distinct event_id) filter (where attribution = 'malformed') as malformed,
    -- Quoted for the linter only (a keyword to it); readers need no quotes.
    count(distinct event_id) filter (where attribution = 'unknown') as "unknown",
    count(distinct event_id) filter (where attribution = 'unmatched') as unmatched,
    max(greatest(quality_batch_id, exposure_quality_batch_id)) as last_quality_batch_id
from attribution
group by event_date, event_type
