{{ config(
    materialized='incremental', unique_key='experiment_day_key', incremental_strategy='delete+insert'
) }}
-- depends_on: {{ ref('fct_recommendation_outcomes') }}
-- Exposures and their outcomes per day, experiment, variant and model version, with 95%
-- intervals; exposures outside an experiment are rows too (experiment_id null), so the
-- champion's everyday figures sit beside the arms'. Sums (revenue, revenue_sq) and counts
-- add up across days; a reader combines days from them, not from the rates.
-- Incremental: the (day, experiment, variant) groups holding an outcome row that changed since
-- the last build are recomputed whole.
with outcomes as (
    select * from {{ ref('fct_recommendation_outcomes') }}
    {% if is_incremental() %}
        -- experiment_id is 1 or more (the exposure contract), so 0 stands for "none".
        where (exposure_date, variant, coalesce(experiment_id, 0)) in (
            select
                changed.exposure_date,
                changed.variant,
                coalesce(changed.experiment_id, 0) as experiment_id
            from {{ ref('fct_recommendation_outcomes') }} as changed
            where {{ newer_than_last_build('changed.last_quality_batch_id') }}
        )
    {% endif %}
),

per_group as (
    select
        exposure_date,
        experiment_id,
        variant,
        model_version,
        count(*) as exposures,
        count(*) filter (where clicked) as clicks,
        count(*) filter (where purchased) as purchases,
        sum(revenue) as revenue,
        sum(revenue * revenue) as revenue_sq,
        max(last_quality_batch_id) as last_quality_batch_id
    from outcomes
    group by exposure_date, experiment_id, variant, model_version
),

figures as (
    select
        *,
        -- experiment_id and model_version may be null, and delete+insert matches keys with "=".
        md5(concat_ws(
            '|', exposure_date, coalesce(experiment_id::text, ''), variant, coalesce(model_version, '')
        )) as experiment_day_key,
        clicks::double precision / exposures as ctr,
        {{ wilson_low('clicks', 'exposures') }} as ctr_low,
        {{ wilson_high('clicks', 'exposures') }} as ctr_high,
        purchases::double precision / exposures as conversion_rate,
        {{ wilson_low('purchases', 'exposures') }} as conversion_low,
        {{ wilson_high('purchases', 'exposures') }} as conversion_high,
        revenue::double precision / exposures as revenue_per_exposure,
        {{ mean_low('revenue', 'revenue_sq', 'exposures') }} as revenue_per_exposure_low,
        {{ mean_high('revenue', 'revenue_sq', 'exposures') }} as revenue_per_exposure_high
    from per_group
)

select
    experiment_day_key,
    exposure_date,
    experiment_id,
    variant,
    model_version,
    exposures,
    clicks,
    ctr,
    ctr_low,
    ctr_high,
    purchases,
    -- Quoted for the linter only (a keyword to it); readers need no quotes.
    conversion_rate as "conversion",
    conversion_low,
    conversion_high,
    revenue,
    revenue_sq,
    revenue_per_exposure,
    revenue_per_exposure_low,
    revenue_per_exposure_high,
    last_quality_batch_id
from figures
