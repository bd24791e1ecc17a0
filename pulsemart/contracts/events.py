"""The event contracts of schema version 1: one declaration per event type.

Customer activity goes to `shop.events` keyed by `customer_id`; catalog changes go to
`shop.catalog` keyed by `product_id`, so each key's events stay in order on one partition.
What the serving API showed goes to `shop.exposures` keyed by the shopper (the customer's
hashed key, else the session).
docs/events.md describes the same fields for readers; a unit test keeps the two in step.
"""

from __future__ import annotations

import dataclasses

from pulsemart.config import CATALOG_TOPIC, EVENTS_TOPIC, EXPOSURES_TOPIC
from pulsemart.contracts.spec import (
    SCHEMA_VERSION,
    EventContract,
    FieldSpec,
    ge,
    gt,
    isin,
    iso8601,
    lt,
    matches,
    ne,
    str_length,
)

_ID = str_length(1, 64)
_NAME = str_length(1, 200)
_CURRENCY = matches(r"[A-Z]{3}")

ENVELOPE: tuple[FieldSpec, ...] = (
    FieldSpec("event_id", "str", rules=(_ID,), doc="unique id; a re-sent event keeps it"),
    FieldSpec("event_type", "str", doc="one of the contract names"),
    FieldSpec("event_time", "str", rules=(iso8601(),), doc="ISO-8601 with offset, UTC"),
    FieldSpec("schema_version", "str", rules=(isin(SCHEMA_VERSION),), doc="contract version"),
    FieldSpec("source", "str", rules=(str_length(1, 32),), doc="simulator, replay, ..."),
)
ENVELOPE_FIELDS = tuple(spec.name for spec in ENVELOPE)

_CUSTOMER = FieldSpec("customer_id", "str", rules=(_ID,))
# Orders may come from guest checkouts (a quarter of the real retail data has no customer).
_ORDER_CUSTOMER = FieldSpec("customer_id", "str", nullable=True, rules=(_ID,))
_SESSION = FieldSpec("session_id", "str", rules=(_ID,))
_ORDER_SESSION = FieldSpec("session_id", "str", required=False, nullable=True, rules=(_ID,))
_PRODUCT = FieldSpec("product_id", "str", rules=(_ID,))
_CATEGORY = FieldSpec("category", "str", rules=(_NAME,))
_PRICE = FieldSpec("unit_price", "float", rules=(gt(0),), doc="price per unit, > 0")
_CUSTOMIZATION = FieldSpec(
    "customization",
    "str",
    required=False,
    nullable=True,
    rules=(_NAME,),
    doc="the customization option chosen, if any",
)
_OPTIONS = FieldSpec("customization_options", "str_list", doc="options a buyer may choose")
_CURRENCY_FIELD = FieldSpec("currency", "str", rules=(_CURRENCY,), doc="ISO 4217 code")
_COUNTRY = FieldSpec("country", "str", rules=(_NAME,))


def _optional(spec: FieldSpec) -> FieldSpec:
    return dataclasses.replace(spec, required=False, nullable=True)


# An outcome's link to the response that led to it. No value rule: an id that is malformed or
# names no exposure is still a valid event; the datamart leaves it unattributed and counts it.
_RECOMMENDATION = FieldSpec(
    "recommendation_id",
    "str",
    required=False,
    nullable=True,
    doc="the `recommendation_id` of the recommendations response the shopper acted on, if any",
)


def _order_line_fields(quantity_rule) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("line_id", "int", rules=(ge(1),), doc="1-based position in the order"),
        _PRODUCT,
        FieldSpec("quantity", "int", rules=(ne(0), quantity_rule)),
        _PRICE,
        _CUSTOMIZATION,
    )


def _order_fields(order_doc: str) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("order_id", "str", rules=(_ID,), doc=order_doc),
        _ORDER_CUSTOMER,
        _ORDER_SESSION,
        FieldSpec("lines", "lines", doc="order lines, see the order line fields"),
        _COUNTRY,
        _CURRENCY_FIELD,
    )


_CONTRACT_LIST = (
    EventContract(
        "product_viewed",
        EVENTS_TOPIC,
        "customer_id",
        doc="A customer opened a product page.",
        fields=(
            _CUSTOMER,
            _SESSION,
            _PRODUCT,
            _CATEGORY,
            FieldSpec("unit_price", "float", rules=(gt(0),), doc="price shown"),
            FieldSpec(
                "referrer",
                "str",
                required=False,
                nullable=True,
                rules=(isin("search", "category", "recommendation", "direct"),),
            ),
            _RECOMMENDATION,
        ),
    ),
    EventContract(
        "search_performed",
        EVENTS_TOPIC,
        "customer_id",
        doc="A customer searched; filters are null when not set.",
        fields=(
            _CUSTOMER,
            _SESSION,
            FieldSpec("query", "str", rules=(str_length(0, 200),)),
            FieldSpec("filter_price_min", "float", required=False, nullable=True, rules=(ge(0),)),
            FieldSpec("filter_price_max", "float", required=False, nullable=True, rules=(gt(0),)),
            FieldSpec("filter_category", "str", required=False, nullable=True, rules=(_NAME,)),
            FieldSpec("filter_customization", "str", required=False, nullable=True, rules=(_NAME,)),
            FieldSpec("filter_in_stock", "bool", required=False, nullable=True),
            FieldSpec("result_product_ids", "str_list", doc="results in ranked order"),
        ),
    ),
    EventContract(
        "cart_updated",
        EVENTS_TOPIC,
        "customer_id",
        doc="A customer added (quantity > 0) or removed (quantity < 0) units of a product.",
        fields=(
            _CUSTOMER,
            _SESSION,
            _PRODUCT,
            FieldSpec("quantity", "int", rules=(ne(0),), doc="change in units, never 0"),
            _PRICE,
            _CUSTOMIZATION,
            _RECOMMENDATION,
        ),
    ),
    EventContract(
        "order_placed",
        EVENTS_TOPIC,
        "customer_id",
        doc="A customer bought the lines of an order.",
        fields=(*_order_fields("the order's id"), _RECOMMENDATION),
        line_fields=_order_line_fields(gt(0)),
    ),
    EventContract(
        "order_cancelled",
        EVENTS_TOPIC,
        "customer_id",
        doc="An order, or part of one, was cancelled; quantities are negative.",
        fields=_order_fields("the cancellation's own id")
        + (
            FieldSpec(
                "cancels_order_id",
                "str",
                required=False,
                nullable=True,
                rules=(_ID,),
                doc="the cancelled order, where known",
            ),
        ),
        line_fields=_order_line_fields(lt(0)),
    ),
    EventContract(
        "price_changed",
        CATALOG_TOPIC,
        "product_id",
        doc="A product's price changed.",
        fields=(
            _PRODUCT,
            _PRICE,
            FieldSpec(
                "previous_unit_price", "float", required=False, nullable=True, rules=(gt(0),)
            ),
            _CURRENCY_FIELD,
        ),
    ),
    EventContract(
        "availability_changed",
        CATALOG_TOPIC,
        "product_id",
        doc="A product's stock changed enough to matter: it sold out or was restocked.",
        fields=(
            _PRODUCT,
            FieldSpec("stock", "int", rules=(ge(0),), doc="units in stock"),
            FieldSpec("available", "bool", doc="whether the product can be bought"),
            FieldSpec("reason", "str", rules=(isin("sold_out", "restocked", "adjustment"),)),
        ),
    ),
    EventContract(
        "product_customized",
        CATALOG_TOPIC,
        "product_id",
        doc="The customization options offered for a product changed.",
        fields=(_PRODUCT, _OPTIONS),
    ),
    EventContract(
        "product_upserted",
        CATALOG_TOPIC,
        "product_id",
        doc="A product was created or its description changed. A shop that knows only part of a "
        "product's state (the Online Retail shop knows no category, stock or options) sends "
        "the rest as null or leaves it out.",
        fields=(
            _PRODUCT,
            FieldSpec("description", "str", nullable=True, rules=(_NAME,), doc="product name"),
            _optional(_CATEGORY),
            _PRICE,
            _optional(_CURRENCY_FIELD),
            FieldSpec(
                "stock", "int", required=False, nullable=True, rules=(ge(0),), doc="units in stock"
            ),
            _optional(_OPTIONS),
        ),
    ),
)

_EXPOSURE = EventContract(
    "recommendation_exposed",
    EXPOSURES_TOPIC,
    "shopper_key",
    doc="The serving API answered a recommendations request: what it showed, to whom, from "
    "which model. One event per response, produced by the API itself.",
    fields=(
        FieldSpec(
            "recommendation_id", "str", rules=(_ID,), doc="the response's id, echoed by outcomes"
        ),
        FieldSpec(
            "shopper_key",
            "str",
            rules=(_ID,),
            doc="partitioning key: the customer's hashed key, else the session id",
        ),
        FieldSpec(
            "customer_key",
            "str",
            nullable=True,
            rules=(_ID,),
            doc="the customer's hashed key (governance.keyed_hash); null for an anonymous shopper",
        ),
        _optional(_SESSION),
        FieldSpec("route", "str", rules=(isin("customer", "session"),), doc="which route answered"),
        FieldSpec("variant", "str", rules=(_ID,), doc="the experiment arm; `champion` outside one"),
        FieldSpec("model_name", "str", rules=(_NAME,)),
        FieldSpec(
            "model_version", "str", nullable=True, rules=(_ID,), doc="null: no model deployed"
        ),
        FieldSpec(
            "items",
            "shown_items",
            doc="the products shown, best first: product_id, position (1-based), because",
        ),
        FieldSpec(
            "experiment_id",
            "int",
            required=False,
            nullable=True,
            rules=(ge(1),),
            doc="the running experiment the shopper was assigned in; null outside one",
        ),
        FieldSpec(
            "shadow_model_version",
            "str",
            required=False,
            nullable=True,
            rules=(_ID,),
            doc="a shadow experiment's challenger, scored for this response and never shown",
        ),
        FieldSpec(
            "shadow_items",
            "shown_items",
            required=False,
            nullable=True,
            doc="what the shadow challenger would have shown, as `items`",
        ),
    ),
)

CONTRACTS: dict[str, EventContract] = {c.event_type: c for c in (*_CONTRACT_LIST, _EXPOSURE)}
EVENT_TYPES: tuple[str, ...] = tuple(CONTRACTS)
