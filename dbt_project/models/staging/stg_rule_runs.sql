-- Records per rule and decision in each quality pass, with the pass's date.
with rule_runs as (
    select * from {{ source('quality', 'rule_runs') }}
),

batches as (
    select * from {{ source('quality', 'batches') }}
)

select
    rule_runs.quality_batch_id,
    rule_runs.rule_id,
    rule_runs.decision,
    rule_runs.records,
    batches.rule_set_version,
    batches.run_id as dagster_run_id,
    (batches.decided_at at time zone 'UTC')::date as decided_date
from rule_runs
inner join batches on rule_runs.quality_batch_id = batches.quality_batch_id
