-- The ML platform: batch-scored recommendations the API serves, which model version serves,
-- model evaluations (the dashboard reads these) and each version's training profile (the drift
-- sensor compares recent data with it).

-- Recommendations of every recently scored version are kept, keyed by version, so promoting
-- back to one (a rollback) switches serving at once, without re-scoring.
create table if not exists serving.recommendations (
    model_name    text             not null,
    model_version text             not null,
    customer_key  text             not null,  -- governance.keyed_hash(customer id), as in the marts
    product_id    text             not null,
    rank          integer          not null,
    score         double precision not null,
    scored_at     timestamptz      not null default now(),
    primary key (model_name, model_version, customer_key, rank)
);

-- The version the API serves, per model; written on promotion and rollback, read per request,
-- so a new champion is served without restarting the API.
create table if not exists serving.model_deployments (
    model_name    text        primary key,
    model_version text        not null,
    deployed_at   timestamptz not null default now(),
    deployed_by   text        not null
);

-- The dashboard reads the first six columns by name; keep them.
create table if not exists governance.model_evaluations (
    evaluated_at   timestamptz      not null default now(),
    model_name     text             not null,
    model_version  text             not null,
    role           text             not null check (role in ('champion', 'challenger', 'baseline')),
    metric         text             not null,
    value          double precision,
    dagster_run_id text,
    data_window    jsonb
);
-- A table made by hand before this migration (the dashboard's tests do that) gains the rest.
alter table governance.model_evaluations
    add column if not exists dagster_run_id text,
    add column if not exists data_window jsonb;
create index if not exists model_evaluations_latest
    on governance.model_evaluations (model_name, model_version, evaluated_at desc);

-- What a version was trained on: the data window and a bounded sample of each drift feature.
create table if not exists governance.training_profiles (
    model_name    text        not null,
    model_version text        not null,
    data_window   jsonb       not null,
    profile       jsonb       not null,
    created_at    timestamptz not null default now(),
    primary key (model_name, model_version)
);
