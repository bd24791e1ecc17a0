"""Serving layer: real-time tables for search, recommendations and reporting.

One multi-asset folds every quality batch released since the last run into `serving.*`
(pulsemart.serving.fold); the `serving_sensor` launches it when quality has released a batch
the serving tables have not folded yet.
"""

from datetime import timedelta

import dagster as dg

from orchestration.defs.common import OWNER
from orchestration.defs.quality.assets import EVENTS_CLEAN, ORDER_LINES_CLEAN, QUALITY_KEYS
from orchestration.resources import PostgresResource

GROUP = "serving"
TAGS = {"layer": "serving", "lane": "near-real-time"}
FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=10), warn_window=timedelta(minutes=2)
)

BOTH = [EVENTS_CLEAN, ORDER_LINES_CLEAN]
TABLES = {  # name: (description, upstream assets)
    "product_state": (
        (
            "Current state of each product (`serving.product_state`): price, availability, stock, "
            "customization options, category and popularity counts, each attribute as of the latest "
            "event time that set it."
        ),
        BOTH,
    ),
    "customer_profile": (
        (
            "Per customer (`serving.customer_profile`): views, searches, carts and purchases, recent "
            "products, category affinity and price band."
        ),
        BOTH,
    ),
    "trending": (
        (
            "Views, cart additions and purchased lines per product over the last 5 minutes and hour of "
            "event time (`serving.trending`)."
        ),
        BOTH,
    ),
    "session_funnel": (
        (
            "Per session (`serving.session_funnel`): views, searches, cart additions and orders, first "
            "and last event time."
        ),
        [EVENTS_CLEAN],
    ),
    "recent_touches": (
        (
            "What each session and each customer viewed, carted and bought lately "
            "(`serving.recent_touches`), bounded in entries and event-time age: the session-aware "
            "blend lends from it (docs/serving.md)."
        ),
        BOTH,
    ),
}
SERVING_KEYS = {name: dg.AssetKey(["serving", name]) for name in TABLES}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            SERVING_KEYS[name],
            deps=deps,
            group_name=GROUP,
            owners=[OWNER],
            kinds={"postgres", "sql"},
            tags=TAGS,
            description=description,
            freshness_policy=FRESHNESS,
        )
        for name, (description, deps) in TABLES.items()
    ],
    can_subset=False,
)
def serving_tables(context: dg.AssetExecutionContext, postgres: PostgresResource):
    from pulsemart.serving.fold import refresh_serving  # psycopg: loaded in the runs that fold

    with postgres.connection() as conn:
        settings = postgres.settings.get()
        report = refresh_serving(
            conn,
            session_state=settings.session_state,
            trending_every_s=settings.trending_refresh_s,
        )
    lag = report.event_time_lag_s()
    context.log.info(
        f"serving: folded quality batches {report.from_batch}..{report.to_batch} "
        f"({report.events} events) in {report.seconds:.2f}s; rows {report.rows}"
    )
    common = {
        "quality_batches_folded": report.batches,
        "events_folded": report.events,
        "last_quality_batch": report.to_batch,
        "max_event_time": report.max_event_time.isoformat() if report.max_event_time else None,
        "event_time_lag_seconds": dg.FloatMetadataValue(lag),
        "seconds": report.seconds,
    }
    for name, key in SERVING_KEYS.items():
        yield dg.MaterializeResult(
            asset_key=key, metadata={**common, "rows_updated": report.rows.get(name, 0)}
        )


REFRESH_SERVING_JOB = dg.define_asset_job(
    "refresh_serving",
    selection=list(SERVING_KEYS.values()),
    description="Fold the quality batches released since the last run into the serving tables.",
    executor_def=dg.in_process_executor,
    tags={"pulsemart/pool": "serving"},
)


# What the quality sensor launches: decide, then fold, in one run. A run of its own per layer
# would add a sensor tick and a run start-up (5-8 s here) to the time from produce to search.
DECIDE_AND_SERVE_JOB = dg.define_asset_job(
    "decide_and_serve",
    selection=[*QUALITY_KEYS, *SERVING_KEYS.values()],
    description="Decide every raw record not yet decided, then fold what was released into the "
    "serving tables.",
    executor_def=dg.in_process_executor,
    tags={"pulsemart/pool": "quality"},
)
