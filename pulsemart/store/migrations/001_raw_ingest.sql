-- raw: the stream exactly as received; ingest: where each partition has been read up to.
create schema if not exists raw;
create schema if not exists ingest;
create schema if not exists governance;

create table if not exists raw.events (
    topic           text        not null,
    "partition"     integer     not null,
    "offset"        bigint      not null,
    key             bytea,
    value           bytea,
    headers         jsonb       not null default '[]',
    kafka_timestamp timestamptz,
    timestamp_type  smallint,
    ingested_at     timestamptz not null default now(),
    batch_id        bigint      not null,
    primary key (topic, "partition", "offset")
);

create table if not exists ingest.offsets (
    topic        text        not null,
    "partition"  integer     not null,
    next_offset  bigint      not null,
    updated_at   timestamptz not null default now(),
    primary key (topic, "partition")
);

create table if not exists ingest.batches (
    batch_id       bigserial   primary key,
    topic          text        not null,
    "partition"    integer     not null,
    start_offset   bigint      not null,
    next_offset    bigint      not null,
    max_events     integer     not null,
    records        integer     not null,
    bytes          bigint      not null,
    run_id         text,
    read_seconds   double precision not null,
    write_seconds  double precision not null,
    started_at     timestamptz not null,
    finished_at    timestamptz not null default now()
);
create index if not exists batches_topic_partition on ingest.batches (topic, "partition", start_offset);

create table if not exists governance.audit_log (
    audit_id    bigserial   primary key,
    at          timestamptz not null default now(),
    actor       text        not null,
    action      text        not null,
    subject     text        not null,
    details     jsonb       not null default '{}'
);
