-- Each product's latest known attributes, each taken from the latest event that set it, so a
-- late older event never overwrites a newer one. The snapshot product_snapshot keeps history.
with events as (
    select * from {{ ref('stg_events') }}
    where event_type in (
        'product_upserted', 'price_changed', 'availability_changed',
        'product_customized', 'product_viewed'
    )
),

described as (
    select distinct on (product_id)
        product_id,
        payload ->> 'description' as description
    from events
    where event_type = 'product_upserted' and payload ->> 'description' is not null
    order by product_id asc, event_time desc, source_offset desc
),

categorised as (
    select distinct on (product_id)
        product_id,
        payload ->> 'category' as category
    from events
    where payload ->> 'category' is not null
    order by product_id asc, event_time desc, source_offset desc
),

priced as (
    select distinct on (product_id)
        product_id,
        (payload ->> 'unit_price')::double precision as unit_price,
        payload ->> 'currency' as currency
    from events
    where event_type in ('product_upserted', 'price_changed')
    order by product_id asc, event_time desc, source_offset desc
),

stocked as (
    select distinct on (product_id)
        product_id,
        (payload ->> 'available')::boolean as available,
        (payload ->> 'stock')::integer as stock
    from events
    where event_type = 'availability_changed'
    order by product_id asc, event_time desc, source_offset desc
),

-- Every product the shop mentioned, ordered ones included: a line may name a product whose
-- catalog events were quarantined or never sent.
products as (
    select product_id from events
    where product_id is not null
    union
    select product_id from {{ ref('stg_order_lines') }}
    where product_id is not null
)

select
    products.product_id,
    described.description,
    priced.unit_price,
    priced.currency,
    stocked.stock,
    coalesce(categorised.category, 'uncategorized') as category,
    -- A product nobody reported sold out is available: the real shop sends no stock events.
    coalesce(stocked.available, true) as available
from products
left join described on products.product_id = described.product_id
left join categorised on products.product_id = categorised.product_id
left join priced on products.product_id = priced.product_id
left join stocked on products.product_id = stocked.product_id
