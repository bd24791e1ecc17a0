-- Each readout of an online experiment as it was computed (pulsemart.ml_store.experiment_readout):
-- the figures a guardrail stopped an experiment on, or a promotion was gated on, stay readable
-- after the datamart has moved on. No foreign key to serving.experiments: governance records
-- outlive what they describe, as governance.audit_log does.
create table if not exists governance.experiment_readouts (
    readout_id     bigint      generated always as identity primary key,
    experiment_id  bigint      not null,
    computed_at    timestamptz not null default now(),
    readout        jsonb       not null,
    dagster_run_id text
);
create index if not exists experiment_readouts_latest
    on governance.experiment_readouts (experiment_id, computed_at desc, readout_id desc);
