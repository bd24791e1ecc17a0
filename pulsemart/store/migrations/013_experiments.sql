-- Online experiments: a deployment's variants beside its champion.
--
-- serving.model_deployments keeps one row per model, its champion, which a dozen statements
-- read by model name; an experiment adds variants to it here rather than rows there, so
-- promotion and rollback keep their meaning. At most one experiment per model runs at a time
-- (the partial unique index). A shopper's arm is a stable hash of the experiment and the
-- customer (the session for an anonymous shopper), `serving.experiment_bucket`, in [0, 1): a
-- variant owns the buckets [low, high); buckets no split variant owns see the champion. A
-- shadow variant is scored and logged for its buckets, never shown.
create table if not exists serving.experiments (
    experiment_id    bigint      generated always as identity primary key,
    model_name       text        not null,
    champion_version text,       -- what served when the experiment started
    shadow           boolean     not null default false,
    status           text        not null default 'running'
        check (status in ('running', 'stopped', 'promoted', 'discarded')),
    started_at       timestamptz not null default now(),
    started_by       text        not null,
    ended_at         timestamptz,
    ended_by         text,
    end_reason       text
);
create unique index if not exists experiments_one_running
    on serving.experiments (model_name) where status = 'running';

create table if not exists serving.experiment_variants (
    experiment_id bigint           not null references serving.experiments,
    variant       text             not null,
    model_version text             not null,  -- a scored version, or `popularity` (trending only)
    share         double precision not null check (share > 0 and share <= 1),
    low           double precision not null check (low >= 0),
    high          double precision not null check (high <= 1 and high > low),
    primary key (experiment_id, variant)
);

-- md5 is stable across PostgreSQL versions and platforms; pulsemart.serving.experiments
-- computes the same bucket in Python.
create or replace function serving.experiment_bucket(experiment_id bigint, unit text)
returns double precision
language sql immutable parallel safe
as $$
    select ('x' || substr(md5(experiment_id::text || ':' || unit), 1, 12))::bit(48)::bigint
           / 281474976710656.0
$$;
