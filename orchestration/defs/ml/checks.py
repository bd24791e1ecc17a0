"""Checks on what the ML layer serves."""

import dagster as dg

from ml import registry
from orchestration.defs.ml.common import RECOMMENDATIONS
from orchestration.resources import PostgresResource

# The deployed version's rows whose product is unavailable now. Scoring leaves such products
# out, so right after scoring this must be 0; later sell-outs are filtered by the API instead.
UNAVAILABLE_SQL = """
select count(*) filter (where p.available is false), count(*), count(distinct r.customer_key)
from serving.model_deployments d
join serving.recommendations r on r.model_name = d.model_name and r.model_version = d.model_version
left join serving.product_state p on p.product_id = r.product_id
where d.model_name = %s
"""


@dg.asset_check(
    asset=RECOMMENDATIONS,
    description=("The served recommendations name no product that is unavailable now."),
)
def recommendations_exclude_unavailable(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connection() as conn:
        unavailable, rows, customers = conn.execute(
            UNAVAILABLE_SQL, (registry.RECOMMENDER,)
        ).fetchone()
    return dg.AssetCheckResult(
        passed=unavailable == 0,
        metadata={"unavailable_rows": unavailable, "served_rows": rows, "customers": customers},
    )
