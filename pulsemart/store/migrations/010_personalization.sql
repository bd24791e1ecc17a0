-- Real-time personalization: each recommender version's item neighbours, and what each session
-- and each customer touched recently (kept by the serving fold, in its transaction).

-- Top-N neighbours per product of a scored recommender version, kept and pruned with that
-- version's rows in serving.recommendations, so a promotion or rollback switches both at once.
create table if not exists serving.item_neighbours (
    model_name    text             not null,
    model_version text             not null,
    product_id    text             not null,
    rank          integer          not null check (rank >= 1),
    neighbour_id  text             not null,
    score         double precision not null,
    scored_at     timestamptz      not null default now(),
    primary key (model_name, model_version, product_id, rank)
);

-- Immutable in fact, though the text-to-timestamptz cast is only stable in general: the times
-- are written by jsonb_build_object from timestamptz values, so each carries its UTC offset and
-- the session's TimeZone cannot change the result. A generated column needs it immutable.
create or replace function serving.oldest_touch(items jsonb) returns timestamptz
language sql immutable as $$
    select min((e->>'event_time')::timestamptz) from jsonb_array_elements(items) e
$$;

-- One row per session (scope 'session') and per customer (scope 'customer'; a session's
-- customer is in serving.session_funnel, which never ages out): the latest touch
-- of each (product, kind), newest first, at most n, none older than the fold's newest event
-- time minus the scope's age bound. The fold merges each micro-batch in; `oldest_event_time`
-- lets it find the rows holding a touch that has just aged out without reading the others.
create table if not exists serving.recent_touches (
    scope             text        not null check (scope in ('session', 'customer')),
    owner_id          text        not null,
    items             jsonb       not null,  -- [{"product_id", "kind", "event_time"}]
    last_event_time   timestamptz not null,
    oldest_event_time timestamptz generated always as (serving.oldest_touch(items)) stored,
    updated_at        timestamptz not null default now(),
    primary key (scope, owner_id)
);
create index if not exists recent_touches_oldest on serving.recent_touches (oldest_event_time);

-- Merge two touch lists: one entry per (product, kind) at its latest time, those later than
-- `since` (null: no age bound), newest first, at most n. The result depends only on the
-- touches, not on how they were split into batches, so a replay rebuilds it exactly.
create or replace function serving.merge_touches(a jsonb, b jsonb, n integer, since timestamptz)
returns jsonb language sql stable as $$
    select coalesce(jsonb_agg(jsonb_build_object('product_id', product_id, 'kind', kind,
                                                 'event_time', at)
                              order by at desc, product_id, kind), '[]'::jsonb)
    from (select product_id, kind, at from (
              select product_id, kind, max(at) as at
              from (select e->>'product_id' as product_id, e->>'kind' as kind,
                           (e->>'event_time')::timestamptz as at
                    from jsonb_array_elements(coalesce(a, '[]') || coalesce(b, '[]')) e) entries
              group by product_id, kind) latest
          where since is null or at > since
          order by at desc, product_id, kind limit n) kept
$$;

