"""Checks on what the ML layer serves."""

from collections.abc import Iterator

import dagster as dg

from ml import registry
from orchestration.defs.ml.common import RECOMMENDATIONS, configure_mlflow
from orchestration.resources import PostgresResource, PulsemartSettings
from pulsemart.ml_store.neighbour_checks import MIN_TRAINED_COVERAGE, neighbour_health
from pulsemart.ml_store.scoring import deployed_version

# The deployed version's rows whose product is unavailable now. Scoring leaves such products
# out, so right after scoring this must be 0; later sell-outs are filtered by the API instead.
UNAVAILABLE_SQL = """
select count(*) filter (where p.available is false), count(*), count(distinct r.customer_key)
from serving.model_deployments d
join serving.recommendations r on r.model_name = d.model_name and r.model_version = d.model_version
left join serving.product_state p on p.product_id = r.product_id
where d.model_name = %s
"""
COVERAGE, UNKNOWN = "item_neighbours_cover_catalog", "item_neighbours_know_their_products"


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


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            COVERAGE,
            asset=RECOMMENDATIONS,
            description=f"At least {MIN_TRAINED_COVERAGE:.0%} of the products the deployed "
            "recommender was trained on have item neighbours in serving.item_neighbours "
            "(metadata: the share of serving.product_state's catalog too).",
        ),
        dg.AssetCheckSpec(
            UNKNOWN,
            asset=RECOMMENDATIONS,
            description="Every product_id and neighbour_id the deployed version's neighbours "
            "name is a product that version was trained on.",
        ),
    ]
)
def item_neighbours_checks(
    postgres: PostgresResource, pulsemart: PulsemartSettings
) -> Iterator[dg.AssetCheckResult]:
    from pulsemart.ml_store.versions import load_version  # MLflow loads only when checked

    with postgres.connection() as conn:
        version = deployed_version(conn, registry.RECOMMENDER)
        if version is None:
            note = {"note": "no recommender deployed: the API serves no neighbours"}
            yield dg.AssetCheckResult(check_name=COVERAGE, passed=True, metadata=note)
            yield dg.AssetCheckResult(check_name=UNKNOWN, passed=True, metadata=note)
            return
        configure_mlflow(pulsemart.get())
        trained = list(load_version(registry.RECOMMENDER, version)[1].products.astype(str))
        health = neighbour_health(conn, registry.RECOMMENDER, version, trained)
    counts = {k: v for k, v in health.items() if k != "unknown_samples"}
    yield dg.AssetCheckResult(
        check_name=COVERAGE,
        passed=health["trained_coverage"] >= MIN_TRAINED_COVERAGE,
        metadata=counts,
    )
    yield dg.AssetCheckResult(
        check_name=UNKNOWN,
        passed=health["unknown_rows"] == 0,
        metadata={**counts, "samples": ", ".join(health["unknown_samples"]) or "none"},
    )
