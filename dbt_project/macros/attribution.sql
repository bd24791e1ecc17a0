{# The product ids of an exposure's items (or shadow_items), in the order shown; null for null. #}
{% macro product_ids_of(items) -%}
    jsonb_path_query_array({{ items }}, '$[*].product_id')
{%- endmacro %}

{# Ids the serving API gives its responses are uuid4().hex. Anything else an outcome echoes was
   made or mangled elsewhere: it is counted as malformed and never matched, even to an
   exposure of the same id. #}
{% macro is_well_formed_recommendation_id(column) -%}
    ({{ column }} ~ '^[0-9a-f]{32}$')
{%- endmacro %}

{# One row per row of `outcome_events` (stg_events rows of product_viewed, cart_updated and
   order_placed that carry a recommendation_id), with how its recommendation_id fared:
   - malformed: not an id the API makes;
   - unknown: well formed, but no exposure has it (yet: an outcome may land before its
     exposure, and is recounted when the exposure lands);
   - attributed: the exposure exists, the outcome is about a product it showed (for an order,
     at least one line's product; a cart change must add units) and happened within its window
     after the exposure, less a few seconds since the shop's and the API's clocks differ;
   - unmatched: the exposure exists but the rest does not hold.
   shown_revenue is an order's amount over its lines of shown products.
   Both fct_recommendation_outcomes and agg_outcome_attribution_daily read their outcomes
   through this one definition, so the two never disagree on what counts. #}
{% macro outcome_attribution(outcome_events, exposures, order_lines) -%}
    select
        {{ outcome_events }}.event_id,
        {{ outcome_events }}.event_type,
        {{ outcome_events }}.event_time,
        {{ outcome_events }}.event_date,
        {{ outcome_events }}.recommendation_id,
        {{ outcome_events }}.quality_batch_id,
        {{ exposures }}.quality_batch_id as exposure_quality_batch_id,
        shown_lines.shown_revenue,
        case
            when not {{ is_well_formed_recommendation_id(outcome_events ~ '.recommendation_id') }}
                then 'malformed'
            when {{ exposures }}.recommendation_id is null then 'unknown'
            when
                {{ outcome_events }}.event_time
                >= {{ exposures }}.exposed_at
                - interval '1 second' * {{ var('attribution_clock_tolerance_seconds') }}
                and {{ outcome_events }}.event_time <= {{ exposures }}.exposed_at + case
                    when {{ outcome_events }}.event_type = 'order_placed'
                        then interval '1 hour' * {{ var('purchase_window_hours') }}
                    else interval '1 minute' * {{ var('click_window_minutes') }}
                end
                and case {{ outcome_events }}.event_type
                    when 'product_viewed'
                        then {{ product_ids_of(exposures ~ '.items') }}
                        @> jsonb_build_array({{ outcome_events }}.product_id)
                    when 'cart_updated'
                        then {{ product_ids_of(exposures ~ '.items') }}
                        @> jsonb_build_array({{ outcome_events }}.product_id)
                        and ({{ outcome_events }}.payload ->> 'quantity')::numeric > 0
                    when 'order_placed' then shown_lines.shown_revenue is not null
                    else false
                end
                then 'attributed'
            else 'unmatched'
        end as attribution
    from {{ outcome_events }}
    left join {{ exposures }}
        on
            {{ outcome_events }}.recommendation_id = {{ exposures }}.recommendation_id
            and {{ is_well_formed_recommendation_id(outcome_events ~ '.recommendation_id') }}
    -- Looked up per order (by event id, which the clean layer indexes) rather than joined whole.
    left join lateral (
        select sum(round(lines.quantity::numeric * lines.unit_price::numeric, 4)) as shown_revenue
        from {{ order_lines }} as lines
        where
            lines.event_id = {{ outcome_events }}.event_id
            and {{ outcome_events }}.event_type = 'order_placed'
            and {{ product_ids_of(exposures ~ '.items') }} @> jsonb_build_array(lines.product_id)
    ) as shown_lines on true
{%- endmacro %}
