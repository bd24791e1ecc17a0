-- One row per day from the first to the last event day (today when there are no events).
with bounds as (
    select
        coalesce(min(event_date), current_date) as first_day,
        coalesce(max(event_date), current_date) as last_day
    from {{ ref('stg_events') }}
),

days as (
    select generate_series(first_day, last_day, interval '1 day')::date as date_day
    from bounds
)

select
    date_day,
    extract(isoyear from date_day)::int as iso_year,
    extract(week from date_day)::int as iso_week,
    extract(year from date_day)::int as calendar_year,
    extract(month from date_day)::int as calendar_month,
    to_char(date_day, 'YYYY-MM') as calendar_year_month,
    extract(isodow from date_day)::int as iso_day_of_week,
    to_char(date_day, 'Dy') as day_name,
    extract(isodow from date_day) in (6, 7) as is_weekend
from days
