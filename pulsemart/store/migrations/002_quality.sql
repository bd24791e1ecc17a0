-- quality: one decision per raw record (accepted, fixed, quarantined, or held for the catalog).
create schema if not exists quality;

-- How far each partition of raw.events has been decided.
create table if not exists quality.progress (
    topic        text    not null,
    "partition"  integer not null,
    next_offset  bigint  not null,
    primary key (topic, "partition")
);

create table if not exists quality.events_clean (
    topic            text        not null,
    "partition"      integer     not null,
    "offset"         bigint      not null,
    event_id         text        not null,
    event_type       text        not null,
    event_time       timestamptz,
    customer_id      text,
    product_id       text,
    payload          jsonb       not null,
    score            double precision not null,
    confidence       double precision not null,
    decision         text        not null check (decision in ('accepted', 'fixed')),
    repairs          jsonb       not null default '[]',
    flags            jsonb       not null default '[]',
    rule_set_version text        not null,
    quality_batch_id bigint      not null,
    decided_at       timestamptz not null default now(),
    primary key (topic, "partition", "offset")
);
create index if not exists events_clean_event_id on quality.events_clean (event_id);
create index if not exists events_clean_type_time on quality.events_clean (event_type, event_time);

create table if not exists quality.order_lines_clean (
    topic                    text    not null,
    "partition"              integer not null,
    "offset"                 bigint  not null,
    event_id                 text    not null,
    order_id                 text,
    line_id                  text,
    product_id               text,
    quantity_as_found        double precision,
    quantity_as_found_text   text,
    unit_price_as_found      double precision,
    unit_price_as_found_text text,
    quantity                 double precision,
    unit_price               double precision,
    is_cancellation          boolean not null,
    flags                    jsonb   not null default '[]'
);
create index if not exists order_lines_clean_source on quality.order_lines_clean (topic, "partition", "offset");
create index if not exists order_lines_clean_line_id on quality.order_lines_clean (line_id);

create table if not exists quality.quarantine (
    topic             text        not null,
    "partition"       integer     not null,
    "offset"          bigint      not null,
    event_id          text,
    event_type        text,
    payload           text,
    payload_encoding  text        not null,
    reasons           jsonb       not null,
    explanation       jsonb       not null default '{}',
    score             double precision not null,
    confidence        double precision not null,
    rule_set_version  text        not null,
    quarantined_at    timestamptz not null default now(),
    quality_batch_id  bigint      not null,
    released_at       timestamptz,
    released_by_rule_set_version text,
    primary key (topic, "partition", "offset")
);
create index if not exists quarantine_open on quality.quarantine (quarantined_at) where released_at is null;
create index if not exists quarantine_event_id on quality.quarantine (event_id);

-- The order lines of quarantined orders, values as found (behind quality.quarantined_lines).
create table if not exists quality.quarantine_lines (
    topic        text    not null,
    "partition"  integer not null,
    "offset"     bigint  not null,
    event_id     text,
    line_id      text,
    product_id   text,
    quantity     jsonb,
    unit_price   jsonb
);
create index if not exists quarantine_lines_source on quality.quarantine_lines (topic, "partition", "offset");

create or replace view quality.quarantined_lines as
select l.line_id, l.product_id, l.quantity, l.unit_price, q.reasons,
       l.topic, l."partition", l."offset", l.event_id
from quality.quarantine_lines l
join quality.quarantine q using (topic, "partition", "offset")
where q.released_at is null;

-- Records waiting for the catalog to learn their product (re-decided every batch).
create table if not exists quality.held (
    topic          text        not null,
    "partition"    integer     not null,
    "offset"       bigint      not null,
    event_id       text,
    reasons        jsonb       not null,
    first_held_at  timestamptz not null,
    primary key (topic, "partition", "offset")
);

-- What the rule engine knows about products, carried from batch to batch.
create table if not exists quality.catalog_state (
    product_id  text  primary key,
    state       jsonb not null
);

create table if not exists quality.batches (
    quality_batch_id bigserial   primary key,
    run_id           text,
    rule_set_version text        not null,
    records_in       integer     not null,
    accepted         integer     not null,
    fixed            integer     not null,
    quarantined      integer     not null,
    held             integer     not null,
    seconds          double precision not null,
    decided_at       timestamptz not null default now()
);

create table if not exists quality.rule_runs (
    quality_batch_id bigint  not null references quality.batches,
    rule_id          text    not null,
    decision         text    not null,
    records          integer not null,
    primary key (quality_batch_id, rule_id, decision)
);
