-- Type-2 product dimension from the snapshot: one row per version of a product.
-- product_key is the durable key facts carry; product_version_key names one version.
with versions as (
    select * from {{ ref('product_snapshot') }}
)

select
    product_id,
    description,
    category,
    unit_price,
    currency,
    available,
    stock,
    dbt_valid_from as valid_from,
    dbt_valid_to as valid_to,
    md5(product_id || '|' || dbt_valid_from::text) as product_version_key,
    md5(product_id) as product_key,
    dbt_valid_to is null as is_current
from versions
