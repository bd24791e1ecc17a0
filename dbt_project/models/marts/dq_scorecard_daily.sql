-- Data quality per day of decision: how many records the rules accepted, fixed and
-- quarantined, the mean confidence, and the rules that fired most.
with released as (
    select
        dq_decision,
        dq_confidence,
        (decided_at at time zone 'UTC')::date as decided_date
    from {{ ref('stg_events') }}
),

quarantined as (
    select
        quarantined_date as decided_date,
        'quarantined' as dq_decision,
        dq_confidence,
        released_at is not null as was_released
    from {{ ref('stg_quarantine') }}
),

decisions as (
    select
        decided_date,
        dq_decision,
        dq_confidence,
        false as was_released
    from released
    union all
    select
        decided_date,
        dq_decision,
        dq_confidence,
        was_released
    from quarantined
),

per_day as (
    select
        decided_date,
        count(*) as records,
        count(*) filter (where dq_decision = 'accepted') as accepted,
        count(*) filter (where dq_decision = 'fixed') as fixed,
        count(*) filter (where dq_decision = 'quarantined') as quarantined,
        count(*) filter (where was_released) as quarantined_then_released,
        avg(dq_confidence) as mean_confidence
    from decisions
    group by decided_date
),

rules_ranked as (
    select
        decided_date,
        rule_id,
        sum(records) as records,
        row_number() over (partition by decided_date order by sum(records) desc, rule_id) as rule_rank
    from {{ ref('stg_rule_runs') }}
    where decision in ('fixed', 'quarantined')
    group by decided_date, rule_id
),

top_rules as (
    select
        decided_date,
        jsonb_agg(jsonb_build_object('rule_id', rule_id, 'records', records) order by rule_rank) as top_rules
    from rules_ranked
    where rule_rank <= 5
    group by decided_date
)

select
    per_day.decided_date,
    per_day.records,
    per_day.accepted,
    per_day.fixed,
    per_day.quarantined,
    per_day.quarantined_then_released,
    round(per_day.quarantined::numeric / nullif(per_day.records, 0), 4) as quarantine_rate,
    round(per_day.mean_confidence::numeric, 4) as mean_confidence,
    coalesce(top_rules.top_rules, '[]'::jsonb) as top_rules
from per_day
left join top_rules on per_day.decided_date = top_rules.decided_date
