"""The serving fold's SQL: constants, every value a bound parameter.

`fold_events` and `fold_lines` are transaction-scoped temporary tables holding the clean events
(and their order lines) of the quality batches being folded; `t` is the event time, with
`-infinity` for an event without one, so that any timed event wins over it.
"""

NEXT_BATCH = """
select max(quality_batch_id) from (
    select quality_batch_id from quality.batches where quality_batch_id > %(last)s
    order by quality_batch_id limit %(limit)s
) pending
"""

COUNT_BATCHES = """
select count(*) from quality.batches
where quality_batch_id > %(last)s and quality_batch_id <= %(upper)s
"""

CREATE_STAGE = """
create temp table if not exists fold_events (
    topic text, "partition" integer, "offset" bigint, event_type text, event_time timestamptz,
    t timestamptz, customer_id text, product_id text, session_id text, payload jsonb
) on commit drop;
create temp table if not exists fold_lines (
    product_id text, quantity double precision, unit_price double precision,
    event_type text, event_time timestamptz, t timestamptz, customer_id text, session_id text
) on commit drop
"""

STAGE_EVENTS = """
insert into fold_events
select topic, "partition", "offset", event_type, event_time,
       coalesce(event_time, '-infinity'::timestamptz), customer_id, product_id,
       payload->>'session_id', payload
from quality.events_clean
where quality_batch_id > %(last)s and quality_batch_id <= %(upper)s
  -- what the API showed is not shop activity: no serving table counts it
  and event_type <> 'recommendation_exposed'
"""

STAGE_LINES = """
insert into fold_lines
select l.product_id, l.quantity, l.unit_price, e.event_type, e.event_time, e.t, e.customer_id,
       e.session_id
from fold_events e
join quality.order_lines_clean l using (topic, "partition", "offset")
where e.event_type in ('order_placed', 'order_cancelled')
"""

# One upsert per group of product attributes; each keeps the latest event of its group in the
# fold (ties: the later offset), and overwrites the stored group only with an event at least
# as recent as the one that set it. Each row it writes says whether a value changed
# (PostgreSQL 18's `returning old.`).
_LATEST = """
insert into serving.product_state as s (product_id, {columns}, {time_column}, updated_event_time)
select distinct on (product_id) product_id, {values}, t, t
from fold_events
where product_id is not null and ({condition})
order by product_id, t desc, topic desc, "partition" desc, "offset" desc
on conflict (product_id) do update set {assignments}, {time_column} = excluded.{time_column},
    updated_event_time = greatest(s.updated_event_time, excluded.updated_event_time),
    updated_at = now()
where excluded.{time_column} >= coalesce(s.{time_column}, '-infinity'::timestamptz)
returning old.product_id is null or {changed} as changed
"""


def _latest(columns: dict[str, str], time_column: str, condition: str, keep_known: bool) -> str:
    assignments = ", ".join(
        f"{c} = coalesce(excluded.{c}, s.{c})" if keep_known else f"{c} = excluded.{c}"
        for c in columns
    )
    return _LATEST.format(
        # A re-sent event (a catalog sync announcing what is known) moves the group's event
        # time but no value: it is not a change the response cache must hear of.
        changed="(" + " or ".join(f"old.{c} is distinct from new.{c}" for c in columns) + ")",
        columns=", ".join(columns),
        values=", ".join(columns.values()),
        time_column=time_column,
        condition=condition,
        assignments=assignments,
    )


def _number(name: str, cast: str = "double precision") -> str:
    return f"case when jsonb_typeof(payload->'{name}') = 'number' then (payload->>'{name}')::{cast} end"


# What a product is, costs and offers: only catalog events change these.
PRODUCT_ATTRIBUTE_UPSERTS = (
    # Description, category and currency: an upsert that omits one keeps what is known.
    _latest(
        {
            "description": "payload->>'description'",
            "category": "payload->>'category'",
            "currency": "payload->>'currency'",
        },
        "info_event_time",
        "event_type = 'product_upserted'",
        keep_known=True,
    ),
    _latest(
        {"unit_price": _number("unit_price")},
        "price_event_time",
        "event_type in ('product_upserted', 'price_changed') "
        "and jsonb_typeof(payload->'unit_price') = 'number'",
        keep_known=False,
    ),
    _latest(
        {
            "stock": _number("stock", "numeric::integer"),
            "available": "case when event_type = 'availability_changed' "
            "and jsonb_typeof(payload->'available') = 'boolean' "
            "then (payload->>'available')::boolean "
            "else (payload->>'stock')::numeric > 0 end",
        },
        "availability_event_time",
        "event_type = 'availability_changed' or (event_type = 'product_upserted' "
        "and jsonb_typeof(payload->'stock') = 'number')",
        keep_known=False,
    ),
    _latest(
        {"customization_options": "payload->'customization_options'"},
        "options_event_time",
        "event_type in ('product_customized', 'product_upserted') "
        "and jsonb_typeof(payload->'customization_options') = 'array'",
        keep_known=False,
    ),
)
# Popularity: views, cart additions and purchased lines add up whatever their order.
PRODUCT_COUNTERS = f"""
    insert into serving.product_state as s (product_id, views, carts, purchases)
    select product_id, sum(views), sum(carts), sum(purchases) from (
        select product_id, (event_type = 'product_viewed')::int as views,
               (event_type = 'cart_updated' and {_number("quantity")} > 0)::int as carts,
               0 as purchases
        from fold_events
        where product_id is not null and event_type in ('product_viewed', 'cart_updated')
        union all
        select product_id, 0, 0, 1 from fold_lines
        where product_id is not null and event_type = 'order_placed'
    ) activity
    group by product_id
    on conflict (product_id) do update set
        views = s.views + excluded.views, carts = s.carts + excluded.carts,
        purchases = s.purchases + excluded.purchases, updated_at = now()
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters

CUSTOMER_UPSERT = f"""
with touches as (
    select e.customer_id, e.product_id, e.t,
           case e.event_type when 'product_viewed' then 1 else 3 end as weight,
           coalesce(e.payload->>'category', p.category) as category,
           {_number("unit_price")} as price
    from fold_events e left join serving.product_state p using (product_id)
    where e.customer_id is not null and e.product_id is not null
      and (e.event_type = 'product_viewed'
           or (e.event_type = 'cart_updated' and {_number("quantity")} > 0))
    union all
    select l.customer_id, l.product_id, l.t, 5, p.category, l.unit_price
    from fold_lines l left join serving.product_state p using (product_id)
    where l.customer_id is not null and l.product_id is not null and l.event_type = 'order_placed'
), counts as (
    select customer_id,
           count(*) filter (where event_type = 'product_viewed') as views,
           count(*) filter (where event_type = 'search_performed') as searches,
           count(*) filter (where event_type = 'cart_updated' and {_number("quantity")} > 0) as carts,
           count(*) filter (where event_type = 'order_placed') as purchases,
           max(event_time) as last_event_time
    from fold_events
    where customer_id is not null
      and event_type in ('product_viewed', 'search_performed', 'cart_updated', 'order_placed')
    group by customer_id
), affinity as (
    select customer_id, jsonb_object_agg(category, weight) as affinity
    from (select customer_id, category, sum(weight) as weight from touches
          where category is not null group by customer_id, category) per_category
    group by customer_id
), prices as (
    select customer_id, sum(price) as price_sum, count(price) as price_n
    from touches where price > 0 group by customer_id
), recent as (
    select customer_id, serving.merge_recent('[]', jsonb_agg(
               jsonb_build_object('product_id', product_id, 'event_time', t)), 20) as recent
    from touches where t > '-infinity'::timestamptz group by customer_id
)
insert into serving.customer_profile as s (customer_id, views, searches, carts, purchases,
    recent_products, category_affinity, price_sum, price_n, last_event_time)
select c.customer_id, c.views, c.searches, c.carts, c.purchases, coalesce(r.recent, '[]'),
       coalesce(a.affinity, '{{}}'), coalesce(p.price_sum, 0), coalesce(p.price_n, 0),
       c.last_event_time
from counts c
left join affinity a using (customer_id)
left join prices p using (customer_id)
left join recent r using (customer_id)
on conflict (customer_id) do update set
    views = s.views + excluded.views, searches = s.searches + excluded.searches,
    carts = s.carts + excluded.carts, purchases = s.purchases + excluded.purchases,
    recent_products = serving.merge_recent(s.recent_products, excluded.recent_products, 20),
    category_affinity = serving.jsonb_sum(s.category_affinity, excluded.category_affinity),
    price_sum = s.price_sum + excluded.price_sum, price_n = s.price_n + excluded.price_n,
    last_event_time = greatest(s.last_event_time, excluded.last_event_time), updated_at = now()
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters

SESSION_UPSERT = f"""
insert into serving.session_funnel as s (session_id, customer_id, views, searches, carts, orders,
    first_event_time, last_event_time)
select session_id, max(customer_id),
       count(*) filter (where event_type = 'product_viewed'),
       count(*) filter (where event_type = 'search_performed'),
       count(*) filter (where event_type = 'cart_updated' and {_number("quantity")} > 0),
       count(*) filter (where event_type = 'order_placed'),
       min(event_time), max(event_time)
from fold_events
where session_id is not null
group by session_id
on conflict (session_id) do update set
    -- greatest, like max() above, ignores nulls: a session that met two customer ids (ids
    -- reused across simulator runs) ends the same whatever the batch boundaries.
    customer_id = greatest(s.customer_id, excluded.customer_id),
    views = s.views + excluded.views, searches = s.searches + excluded.searches,
    carts = s.carts + excluded.carts, orders = s.orders + excluded.orders,
    first_event_time = least(s.first_event_time, excluded.first_event_time),
    last_event_time = greatest(s.last_event_time, excluded.last_event_time)
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters

# What each session and each customer touched: views, cart additions and purchased lines, with
# their event time (untimed events are left out: they cannot be placed in a recency order).
# `since` bounds the age per scope from the fold's newest event time; see serving.merge_touches.
RECENT_TOUCHES_UPSERT = f"""
with touches as (
    select session_id, customer_id, product_id, t,
           case event_type when 'product_viewed' then 'view' else 'cart' end as kind
    from fold_events
    where product_id is not null and t > '-infinity'::timestamptz
      and (event_type = 'product_viewed'
           or (event_type = 'cart_updated' and {_number("quantity")} > 0))
    union all
    select session_id, customer_id, product_id, t, 'purchase'
    from fold_lines
    where product_id is not null and t > '-infinity'::timestamptz and event_type = 'order_placed'
), owned as (
    select 'session' as scope, session_id as owner_id, product_id, kind, t
    from touches where session_id is not null
    union all
    select 'customer', customer_id, product_id, kind, t
    from touches where customer_id is not null
), merged as (
    select scope, owner_id,
           serving.merge_touches('[]', jsonb_agg(jsonb_build_object(
               'product_id', product_id, 'kind', kind, 'event_time', t)),
               case scope when 'session' then %(session_n)s else %(customer_n)s end,
               case scope when 'session' then %(session_since)s::timestamptz
                          else %(customer_since)s::timestamptz end) as items,
           max(t) as last_event_time
    from owned group by scope, owner_id
)
insert into serving.recent_touches as s (scope, owner_id, items, last_event_time)
select scope, owner_id, items, last_event_time
from merged where items <> '[]'::jsonb
on conflict (scope, owner_id) do update set
    items = serving.merge_touches(s.items, excluded.items,
        case s.scope when 'session' then %(session_n)s else %(customer_n)s end,
        case s.scope when 'session' then %(session_since)s::timestamptz
                     else %(customer_since)s::timestamptz end),
    last_event_time = greatest(s.last_event_time, excluded.last_event_time),
    updated_at = now()
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters

# Touches that have aged out of rows no batch touched: only rows whose oldest touch is past its
# scope's bound are rewritten (the index on oldest_event_time finds them), then emptied rows go.
RECENT_TOUCHES_EXPIRE = (
    """
    update serving.recent_touches set
        items = serving.merge_touches(items, '[]', jsonb_array_length(items), %(since)s),
        updated_at = now()
    where scope = %(scope)s and oldest_event_time <= %(since)s
    returning owner_id
    """,
    "delete from serving.recent_touches where scope = %(scope)s and items = '[]'::jsonb",
)

MAX_EVENT_TIME = """
select greatest(%(previous)s::timestamptz, (select max(event_time) from fold_events))
"""

# Recomputed from the last hour of event time before the latest folded event (both windows
# from one scan of the (event_type, event_time) index).
TRENDING = f"""
with activity as (
    select product_id, event_time,
           (event_type = 'product_viewed')::int as views,
           (event_type = 'cart_updated')::int as carts,
           0 as purchases
    from quality.events_clean
    where event_type in ('product_viewed', 'cart_updated') and product_id is not null
      and event_time > %(as_of)s::timestamptz - interval '1 hour'
      and event_time <= %(as_of)s::timestamptz
      and (event_type = 'product_viewed' or {_number("quantity")} > 0)
    union all
    select l.product_id, e.event_time, 0, 0, 1
    from quality.events_clean e join quality.order_lines_clean l using (topic, "partition", "offset")
    where e.event_type = 'order_placed' and l.product_id is not null
      and e.event_time > %(as_of)s::timestamptz - interval '1 hour'
      and e.event_time <= %(as_of)s::timestamptz
), windows (name, span) as (values ('5m', interval '5 minutes'), ('1h', interval '1 hour'))
insert into serving.trending (product_id, "window", category, views, carts, purchases, score, as_of)
select a.product_id, w.name, p.category, sum(a.views), sum(a.carts), sum(a.purchases),
       sum(a.views + 3 * a.carts + 5 * a.purchases), %(as_of)s::timestamptz
from activity a
cross join windows w
left join serving.product_state p using (product_id)
where a.event_time > %(as_of)s::timestamptz - w.span
group by a.product_id, w.name, p.category
"""  # noqa: S608 - splices only this module's constant SQL; values are bound parameters

ADVANCE = """
insert into serving.progress
    (singleton, quality_batch_id, max_event_time, trending_as_of, events_folded, updated_at)
values (true, %(upper)s, %(max_event_time)s, %(trending_as_of)s, %(events)s, now())
on conflict (singleton) do update set
    quality_batch_id = excluded.quality_batch_id, max_event_time = excluded.max_event_time,
    trending_as_of = excluded.trending_as_of,
    events_folded = serving.progress.events_folded + excluded.events_folded, updated_at = now()
"""

# The lowered categories of the products the fold names: read before the upserts and after, so
# a product that moves from one category to another is logged under both.
# The events that change a product's attributes (PRODUCT_ATTRIBUTE_UPSERTS); every other
# event moves its counters only.
CATALOG_EVENTS = (
    "('product_upserted', 'price_changed', 'availability_changed', 'product_customized')"
)

# The lowered categories of the fold's products, and of those a catalog event names.
FOLD_CATEGORIES = f"""
select coalesce(array_agg(distinct lower(p.category)), '{{}}'),
       coalesce(array_agg(distinct lower(p.category)) filter (where p.product_id in (
           select product_id from fold_events where event_type in {CATALOG_EVENTS}
       )), '{{}}')
from serving.product_state p
where p.category is not null and p.product_id in (
    select product_id from fold_events union select product_id from fold_lines
)
"""  # noqa: S608 - a constant

# Rows past the fold's start are a history the progress no longer has (it was rewound without
# reset_fold, by a truncate): they go first, so no reader takes them for this fold's.
FORGET_LATER_FOLDS = "delete from serving.fold_changes where to_batch > %(last)s"

# What the fold touched, for the API's response cache (migration 011). `expired_*` are the
# owners whose recent touches aged out though none of their events is in the fold.
LOG_FOLD_CHANGES = """
insert into serving.fold_changes
    (to_batch, from_batch, products, categories, customers, sessions, catalog, catalog_categories)
select %(upper)s, %(last)s,
       (select coalesce(array_agg(distinct product_id), '{}') from (
            select product_id from fold_events union select product_id from fold_lines
        ) named where product_id is not null),
       (select coalesce(array_agg(distinct c), '{}')
        from unnest(%(categories_before)s::text[] || %(categories_after)s::text[]) c),
       (select coalesce(array_agg(distinct id), '{}') from (
            select customer_id from fold_events union select unnest(%(expired_customers)s::text[])
        ) named (id) where id is not null),
       (select coalesce(array_agg(distinct id), '{}') from (
            select session_id from fold_events union select unnest(%(expired_sessions)s::text[])
        ) named (id) where id is not null),
       %(catalog)s,
       (select coalesce(array_agg(distinct c), '{}')
        from unnest(%(catalog_before)s::text[] || %(catalog_after)s::text[]) c)
"""

FOLD_CHANGES_KEPT = 2000  # folds: at 10 a second, over three minutes of history for a reader
PRUNE_FOLD_CHANGES = f"""
delete from serving.fold_changes where to_batch < (
    select to_batch from serving.fold_changes order by to_batch desc
    offset {FOLD_CHANGES_KEPT - 1} limit 1
)
"""  # noqa: S608 - a constant
