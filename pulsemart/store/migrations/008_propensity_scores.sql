-- Batch-scored purchase propensity the API serves on /customers/{id}: one row per customer per
-- scored version, kept for recent versions like serving.recommendations, so a rollback to one
-- of them only moves serving.model_deployments.
create table if not exists serving.propensity_scores (
    model_name    text             not null,
    model_version text             not null,
    customer_key  text             not null,  -- governance.keyed_hash(customer id), as in the marts
    score         double precision not null check (score between 0 and 1),
    scored_at     timestamptz      not null default now(),
    primary key (model_name, model_version, customer_key)
);

-- The API's response cache reads max(scored_at) of both score tables several times a second
-- (a re-scored version changes what it serves): an index makes that one index probe.
create index if not exists propensity_scores_scored_at on serving.propensity_scores (scored_at);
create index if not exists recommendations_scored_at on serving.recommendations (scored_at);
