"""The API's response bodies, as the OpenAPI description documents them.

Routes build plain dicts from the queries and send them as JSON bytes (orjson); these models
describe those bodies for `/openapi.json` and the clients generated from it. The OpenAPI
property test (tests/integration/test_openapi.py) checks every response against them, so a
field a query adds or drops fails the tests rather than a client.

One error body for every 4xx and 5xx: `Error` (`detail`, and `errors` per field for a 422).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='Where the bad value is, e.g. ["query", "limit"].')
    msg: str
    type: str


class Error(BaseModel):
    detail: str = Field(description="What went wrong, for a person.")
    errors: list[FieldError] = Field(
        default_factory=list, description="One entry per invalid field (422 only)."
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for `statuses`, all with the one error body."""
    text = {
        401: "No X-API-Key header.",
        403: "The X-API-Key header holds another key.",
        422: "A parameter is invalid; `errors` names each one.",
        503: "The database cannot be reached.",
    }
    return {status: {"model": Error, "description": text[status]} for status in statuses}


class Health(BaseModel):
    status: Literal["ok"]


class Product(BaseModel):
    product_id: str
    description: str | None
    category: str | None
    unit_price: float
    currency: str | None
    available: bool | None = Field(
        description="null: no availability event seen yet (sold as available)."
    )
    stock: int | None
    customization_options: list[Any] | dict[str, Any]
    customizable: bool | None
    views: int
    carts: int
    purchases: int
    popularity: int
    updated_event_time: datetime | None


class SearchResult(BaseModel):
    count: int
    items: list[Product]


class RecommendedProduct(BaseModel):
    product_id: str
    description: str | None
    category: str | None
    unit_price: float | None = Field(
        description="null only for a model-ranked product the serving tables do not know yet."
    )
    currency: str | None
    available: bool | None
    stock: int | None
    customizable: bool | None
    score: float = Field(description="The blend's score (ml/blend.py): higher is better.")
    trending_score: float | None = Field(
        None, description="The last hour's trending score, when the product is trending."
    )
    popularity: int | None = Field(None, description="All-time views, carts and purchases.")
    source: Literal["model", "session", "history", "trending"] = Field(
        description="What contributed most: the batch model, neighbours of this session's "
        "products, of the customer's earlier products, or trending."
    )
    because: list[str] = Field(
        description="The session's or recent history's products that led to this item, "
        "strongest first; empty for pure model or trending items."
    )


BlendSource = Literal["model", "session", "history", "trending"]


class Recommendations(BaseModel):
    recommendation_id: str = Field(
        description="This response's own id: its exposure on shop.exposures carries it, and "
        "views, cart additions and orders that follow from it may echo it."
    )
    customer_id: str | None = Field(description="null on the anonymous session route.")
    session_id: str | None = Field(description="The session asked about, if any.")
    session_known: bool = Field(
        description="The serving tables hold recent products of this session; false for an "
        "unknown or expired session (the blend then uses the customer's history and trending)."
    )
    source: Literal["model", "personalized_trending", "trending"] = Field(
        description="The base ranking: `model` when the deployed recommender scored this "
        "customer; otherwise trending products, re-ranked for a customer the serving tables know."
    )
    sources: list[BlendSource] = Field(description="Every source that placed an item.")
    model_version: str | None = Field(
        description="The recommender version whose scores and neighbours were blended: the "
        "deployed one, or the shopper's experiment arm's (`popularity`: trending only)."
    )
    variant: str = Field(
        description="The shopper's experiment arm: `champion` outside an experiment, else "
        "`champion`, `challenger`, `challenger_2`, ... by a stable hash of the customer (the "
        "session for an anonymous shopper)."
    )
    experiment_id: int | None = Field(
        description="The running experiment on the recommender, if any."
    )
    as_of: datetime | None = Field(description="The newest event time of the fold served.")
    items: list[RecommendedProduct]


class SimilarProduct(BaseModel):
    product_id: str
    description: str | None
    category: str | None
    unit_price: float
    currency: str | None
    available: bool | None
    stock: int | None
    customizable: bool | None
    popularity: int
    score: float = Field(description="Similarity to the asked product (the model's own scale).")


class SimilarProducts(BaseModel):
    product_id: str
    model_version: str | None = Field(
        description="The deployed recommender whose neighbours these are; null: none deployed."
    )
    items: list[SimilarProduct]


class Propensity(BaseModel):
    score: float = Field(
        ge=0, le=1, description="P(the customer buys in the model's label window)."
    )
    model_name: str
    model_version: str = Field(
        description="The deployed (champion) version that scored this customer."
    )
    scored_at: datetime


class Customer(BaseModel):
    customer_id: str
    known: bool = Field(description="The serving tables have seen this customer's activity.")
    propensity: Propensity | None = Field(
        description="The deployed propensity model's batch score; null when no version is deployed "
        "or it did not score this customer (unknown customers: always null)."
    )


class Partition(BaseModel):
    topic: str
    partition: int
    landed_offset: int
    decided_offset: int
    decision_lag: int
    last_landed_at: datetime | None
    seconds_since_landed: float | None


class QualityWindow(BaseModel):
    records: int
    accepted: int
    fixed: int
    quarantined: int
    held: int
    batches: int


class Freshness(BaseModel):
    max_event_time: datetime | None
    last_quality_batch_folded: int | None
    event_time_lag_seconds: float | None
    seconds_since_refresh: float | None
    quality_batches_waiting: int | None


class RealtimeMetrics(BaseModel):
    events_per_second: float
    partitions: list[Partition]
    quality_last_5m: QualityWindow
    freshness: Freshness


# The dashboard's data, GET /dashboard/data (pulsemart/serving/dashboard.py, docs/dashboard.md).
# While the datamart is not built only `available`, `message` and `generated_at` are sent.


class DashboardTotals(BaseModel):
    net_revenue: float
    gross_revenue: float
    cancelled_revenue: float
    units_sold: float
    first_day: date | None
    last_day: date | None
    days: int = Field(description="Days with sales.")


class TimePoint(BaseModel):
    x: str = Field(
        description="The bucket's start: a date, or a UTC time at minute and hour grain."
    )
    label: str = Field(description="The bucket as the axis shows it (UTC).")
    y: float = Field(description="Net revenue in the bucket; 0 where nothing sold.")


class SalesOverTime(BaseModel):
    grain: Literal["minute", "hour", "day"] = Field(
        description="Chosen from the span of the order lines: minute up to 2 hours, hour up to "
        "3 days, day beyond."
    )
    points: list[TimePoint] = Field(description="Every bucket from the first sale to the last.")


class DashboardBar(BaseModel):
    label: str
    value: float
    product_id: str | None = None
    category: str | None = None
    units: float | None = None


class DashboardBars(BaseModel):
    bars: list[DashboardBar]


class FunnelStep(BaseModel):
    key: str
    label: str
    value: float
    share_of_sessions: float
    share_of_previous: float


class Funnel(BaseModel):
    steps: list[FunnelStep]


class DqSeries(BaseModel):
    name: Literal["accepted", "fixed", "quarantined"]
    values: list[float]


class DqRule(BaseModel):
    rule_id: str
    records: int


class DqScorecard(BaseModel):
    days: list[date]
    series: list[DqSeries]
    records: float
    quarantined_then_released: float
    quarantine_rate: float
    top_rules: list[DqRule]


class ModelSeries(BaseModel):
    name: str = Field(description="champion, challenger or baseline.")
    version: str
    values: list[float | None] = Field(description="One per metric; null: not evaluated.")


class ModelChart(BaseModel):
    model_name: str
    metrics: list[str]
    series: list[ModelSeries]
    served_version: str | None
    evaluated_at: datetime | None


class ModelPerformance(BaseModel):
    available: bool
    message: str | None
    models: list[ModelChart]


class Estimate(BaseModel):
    estimate: float | None = Field(description="null: no exposures.")
    low: float | None = Field(description="The 95% interval's lower end.")
    high: float | None


class ExperimentArm(BaseModel):
    variant: str
    model_version: str | None
    share: float = Field(
        description="The configured share of shoppers (a shadow variant's: scored, not shown)."
    )


class ExperimentHeading(BaseModel):
    experiment_id: int
    model_name: str
    status: Literal["running", "stopped", "promoted", "discarded"]
    shadow: bool
    champion_version: str | None
    started_at: datetime
    ended_at: datetime | None
    shares: list[ExperimentArm] = Field(description="The champion first.")


class ExperimentVariantFigures(BaseModel):
    variant: str
    model_version: str | None
    share: float | None
    exposures: int
    clicks: int = Field(description="Exposures clicked.")
    purchases: int
    revenue: float
    ctr: Estimate = Field(description="clicks / exposures, with its Wilson interval.")
    conversion: Estimate = Field(description="purchases / exposures, with its Wilson interval.")
    revenue_per_exposure: Estimate = Field(
        description="revenue / exposures, with the normal interval of a mean."
    )
    first_day: date | None
    last_day: date | None


class ExperimentPanel(BaseModel):
    available: bool = Field(description="false: no experiment, no readout mart, or no exposures.")
    message: str | None
    experiment: ExperimentHeading | None = Field(
        description="The recommender's running experiment, else its latest."
    )
    variants: list[ExperimentVariantFigures]


class DashboardData(BaseModel):
    available: bool = Field(description="false while a mart table is missing.")
    message: str | None = Field(description="Why the datamart cannot be shown yet.")
    generated_at: datetime
    totals: DashboardTotals | None = None
    sales_over_time: SalesOverTime | None = None
    sales_by_country: DashboardBars | None = None
    top_products: DashboardBars | None = None
    top_categories: DashboardBars | None = None
    funnel: Funnel | None = None
    dq_scorecard: DqScorecard | None = None
    model_performance: ModelPerformance | None = None
    experiment: ExperimentPanel | None = None
