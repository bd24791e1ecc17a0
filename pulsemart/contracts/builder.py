"""Building, encoding and routing events, derived from the declared contracts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pulsemart.contracts.events import CONTRACTS
from pulsemart.contracts.spec import SCHEMA_VERSION, EventContract, FieldSpec


class ContractError(ValueError):
    """An event does not fit its contract; the message names the event type and field."""


def contract_for(event_type: str) -> EventContract:
    try:
        return CONTRACTS[event_type]
    except KeyError:
        known = ", ".join(CONTRACTS)
        raise ContractError(f"unknown event type {event_type!r}; known: {known}") from None


def format_event_time(moment: datetime) -> str:
    """The canonical event_time: UTC, millisecond precision, `Z` suffix."""
    if moment.tzinfo is None:
        raise ContractError("event_time must be timezone-aware")
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z"


def build_event(
    event_type: str,
    *,
    event_id: str | None = None,
    event_time: datetime | str | None = None,
    source: str = "simulator",
    **fields: Any,
) -> dict:
    """A flat event dict: the envelope, then the type's fields in contract order.

    Raises `ContractError` when a required field is missing, a non-nullable one is None or a
    field is not in the contract. Values are not range-checked here: the Pandera schemas
    (`pandera_schema`) do that for whole batches. Without `event_id`/`event_time` a random
    id and the current time are used; the simulator always passes both to stay deterministic.
    """
    contract = contract_for(event_type)
    if isinstance(event_time, datetime):
        event_time = format_event_time(event_time)
    event: dict[str, Any] = {
        "event_id": event_id if event_id is not None else str(uuid.uuid4()),
        "event_type": event_type,
        "event_time": event_time or format_event_time(datetime.now(UTC)),
        "schema_version": SCHEMA_VERSION,
        "source": source,
    }
    event.update(_fill(contract.fields, fields, event_type))
    if contract.line_fields:
        event["lines"] = [
            _fill(contract.line_fields, line, f"{event_type} line {position}")
            for position, line in enumerate(event["lines"], start=1)
        ]
    return event


def _fill(specs: tuple[FieldSpec, ...], given: dict, where: str) -> dict:
    unknown = given.keys() - {spec.name for spec in specs}
    if unknown:
        raise ContractError(f"{where}: field(s) not in the contract: {', '.join(sorted(unknown))}")
    filled: dict = {}
    for spec in specs:
        if spec.name not in given:
            if spec.required:
                raise ContractError(f"{where}: required field {spec.name!r} is missing")
            filled[spec.name] = None
            continue
        value = given[spec.name]
        if value is None and not spec.nullable:
            raise ContractError(f"{where}: field {spec.name!r} must not be null")
        filled[spec.name] = value
    return filled


def encode_event(event: dict) -> bytes:
    """Compact UTF-8 JSON, the bytes a Kafka record value carries."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def topic_for(event_type: str) -> str:
    return contract_for(event_type).topic


def key_for(event: dict) -> str | None:
    """The partitioning key: the value of the type's key field (None for a guest order)."""
    return event.get(contract_for(event["event_type"]).key_field)
