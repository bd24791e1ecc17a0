-- serving: real-time tables folded from quality.events_clean, one quality batch at a time.
create schema if not exists serving;

-- The serving fold reads clean events by the quality batch that released them.
create index if not exists events_clean_batch on quality.events_clean (quality_batch_id);

-- Current state of each product. Each group of attributes carries the event time of the event
-- that set it, so an older event arriving late never overwrites a newer one.
create table if not exists serving.product_state (
    product_id            text primary key,
    description           text,
    category              text,
    currency              text,
    info_event_time       timestamptz,
    unit_price            double precision,
    price_event_time      timestamptz,
    stock                 integer,
    available             boolean,
    availability_event_time timestamptz,
    customization_options jsonb not null default '[]',
    customizable          boolean generated always as (jsonb_array_length(customization_options) > 0) stored,
    options_event_time    timestamptz,
    views                 bigint not null default 0,
    carts                 bigint not null default 0,
    purchases             bigint not null default 0,
    popularity            bigint generated always as (views + 3 * carts + 5 * purchases) stored,
    updated_event_time    timestamptz,
    updated_at            timestamptz not null default now()
);
create index if not exists product_state_category on serving.product_state (lower(category), unit_price);
create index if not exists product_state_price on serving.product_state (unit_price);

-- What each customer did: counts, the products they touched last, where their taste lies.
create table if not exists serving.customer_profile (
    customer_id        text primary key,
    views              bigint not null default 0,
    searches           bigint not null default 0,
    carts              bigint not null default 0,
    purchases          bigint not null default 0,
    -- [{"product_id", "event_time"}], newest first, at most 20
    recent_products    jsonb not null default '[]',
    -- {category: weight}: view 1, cart 3, purchased line 5
    category_affinity  jsonb not null default '{}',
    price_sum          double precision not null default 0,
    price_n            bigint not null default 0,
    avg_price          double precision generated always as (price_sum / nullif(price_n, 0)) stored,
    price_band_low     double precision generated always as (price_sum / nullif(price_n, 0) / 2) stored,
    price_band_high    double precision generated always as (price_sum / nullif(price_n, 0) * 2) stored,
    last_event_time    timestamptz,
    updated_at         timestamptz not null default now()
);

-- Activity per product over the last 5 minutes and hour of event time (relative to the latest
-- event time folded, not the wall clock: a replay of last year's stream still trends).
create table if not exists serving.trending (
    product_id  text    not null,
    "window"    text    not null check ("window" in ('5m', '1h')),
    category    text,
    views       bigint  not null,
    carts       bigint  not null,
    purchases   bigint  not null,
    score       bigint  not null,
    as_of       timestamptz not null,
    primary key ("window", product_id)
);

-- One row per session: how far down the funnel it went.
create table if not exists serving.session_funnel (
    session_id       text primary key,
    customer_id      text,
    views            bigint not null default 0,
    searches         bigint not null default 0,
    carts            bigint not null default 0,
    orders           bigint not null default 0,
    first_event_time timestamptz,
    last_event_time  timestamptz
);

-- How far the fold has gone: the last quality batch folded in (one row).
create table if not exists serving.progress (
    singleton          boolean primary key default true check (singleton),
    quality_batch_id   bigint not null,
    max_event_time     timestamptz,
    events_folded      bigint not null default 0,
    updated_at         timestamptz not null default now()
);

-- Add two {key: number} documents key by key (category affinities of two folds).
create or replace function serving.jsonb_sum(a jsonb, b jsonb) returns jsonb
language sql immutable as $$
    select coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
    from (select key, sum(value::double precision) as total
          from (select * from jsonb_each_text(coalesce(a, '{}'))
                union all select * from jsonb_each_text(coalesce(b, '{}'))) both_sides
          group by key) summed
$$;

-- Merge two [{"product_id", "event_time"}] lists: one entry per product (its latest time),
-- newest first, at most n. Order of arrival does not matter, only event time.
create or replace function serving.merge_recent(a jsonb, b jsonb, n integer) returns jsonb
language sql immutable as $$
    select coalesce(jsonb_agg(jsonb_build_object('product_id', product_id, 'event_time', at)
                              order by at desc, product_id), '[]'::jsonb)
    from (select product_id, at from (
              select product_id, max(at) as at
              from (select e->>'product_id' as product_id, (e->>'event_time')::timestamptz as at
                    from jsonb_array_elements(coalesce(a, '[]') || coalesce(b, '[]')) e) entries
              group by product_id) latest
          order by at desc, product_id limit n) kept
$$;
