"""Versioned event contracts: one declaration per event type, from which the event builder,
the JSON encoding, topic routing and the Pandera schemas are all derived."""

from pulsemart.contracts.builder import (
    ContractError,
    build_event,
    contract_for,
    encode_event,
    format_event_time,
    key_for,
    topic_for,
)
from pulsemart.contracts.events import CONTRACTS, ENVELOPE, ENVELOPE_FIELDS, EVENT_TYPES
from pulsemart.contracts.schemas import (
    events_frame,
    order_lines_frame,
    order_lines_schema,
    pandera_schema,
)
from pulsemart.contracts.spec import SCHEMA_VERSION, EventContract, FieldSpec, Rule

__all__ = [
    "CONTRACTS",
    "ENVELOPE",
    "ENVELOPE_FIELDS",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "ContractError",
    "EventContract",
    "FieldSpec",
    "Rule",
    "build_event",
    "contract_for",
    "encode_event",
    "events_frame",
    "format_event_time",
    "key_for",
    "order_lines_frame",
    "order_lines_schema",
    "pandera_schema",
    "topic_for",
]
