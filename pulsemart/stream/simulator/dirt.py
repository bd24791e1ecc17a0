"""Corrupting clean events the way real sources do, with a record of what was done.

Taxonomy (docs/events.md has examples). Each name is the `corruption` of a truth record:

- missing_field      a required, non-nullable field is removed (never event_id).
- wrong_type         a field gets another JSON type: numbers become strings, strings numbers,
                     lists a comma-joined string, order lines a JSON-encoded string.
- malformed_json     the value is cut short, so it does not parse.
- timestamp_format   event_time, same instant, in another format: "3/1/24 10:00" (US, as in
                     the Online Retail data), "2024-03-01 10:00:00" (no zone) or epoch millis.
- nonpositive_price  a unit_price (top-level or one order line's) becomes 0 or negative.
- currency_string    a unit_price becomes text with a currency sign: "£2.55".
- unknown_product_id a product_id (top-level or one order line's) names no catalog product.
- duplicate          a clean event already produced is produced again, byte for byte.
- out_of_order       event_time moves earlier than the event produced before it.
- future_timestamp   event_time moves 20 to 30 years ahead.
- oversized_payload  a text field is padded until the value exceeds 1 MiB.

The first six, and oversized_payload, break the contract (the Pandera schemas or JSON
parsing reject the record). unknown_product_id, duplicate, out_of_order and future_timestamp
produce contract-valid records that only checks against the catalog, earlier events or the
clock can catch.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from pulsemart.contracts import CONTRACTS, ENVELOPE_FIELDS, encode_event, format_event_time

# Relative frequencies. Oversized payloads are rare so a dirty stream stays a sensible size.
CORRUPTION_WEIGHTS: dict[str, float] = {
    "missing_field": 1.0,
    "wrong_type": 1.0,
    "malformed_json": 1.0,
    "timestamp_format": 1.0,
    "nonpositive_price": 1.0,
    "currency_string": 1.0,
    "unknown_product_id": 1.0,
    "duplicate": 1.0,
    "out_of_order": 1.0,
    "future_timestamp": 1.0,
    "oversized_payload": 0.1,
}
CORRUPTIONS: tuple[str, ...] = tuple(CORRUPTION_WEIGHTS)
OVERSIZED_BYTES = 1024 * 1024


class Corrupted(NamedTuple):
    value: bytes
    field: str | None  # the field changed, e.g. "lines[2].unit_price"; None for whole records


def choose_corruption(rng: random.Random, event: dict, can_duplicate: bool) -> str:
    kinds = [
        kind
        for kind in CORRUPTIONS
        if (kind != "duplicate" or can_duplicate)
        and (kind not in ("nonpositive_price", "currency_string") or _has(event, "unit_price"))
        and (kind != "unknown_product_id" or _has(event, "product_id"))
    ]
    return rng.choices(kinds, [CORRUPTION_WEIGHTS[kind] for kind in kinds])[0]


def corrupt(
    rng: random.Random, kind: str, event: dict, moment: datetime, previous_moment: datetime
) -> Corrupted:
    """The corrupted value of `event`, which happened at `moment`; `event` is left unchanged."""
    if kind == "duplicate":
        return Corrupted(encode_event(event), None)
    if kind == "malformed_json":
        encoded = encode_event(event)
        return Corrupted(encoded[: rng.randrange(1, len(encoded) - 1)], None)
    bad = copy.deepcopy(event)
    field = _CORRUPTERS[kind](rng, bad, moment, previous_moment)
    return Corrupted(encode_event(bad), field)


def _missing_field(rng, event, moment, previous_moment) -> str:
    contract = CONTRACTS[event["event_type"]]
    removable = [name for name in ENVELOPE_FIELDS if name != "event_id"] + [
        spec.name for spec in contract.fields if spec.required and not spec.nullable
    ]
    name = rng.choice(removable)
    del event[name]
    return name


def _wrong_type(rng, event, moment, previous_moment) -> str:
    name = rng.choice([k for k, v in event.items() if k != "event_id" and v is not None])
    value = event[name]
    if isinstance(value, bool):
        event[name] = "yes" if value else "no"
    elif isinstance(value, (int, float)):
        event[name] = str(value)
    elif isinstance(value, str):
        # Like the retail data's float customer ids: the digits survive, the type does not.
        event[name] = float("".join(filter(str.isdigit, value)) or 0)
    elif name == "lines":
        event[name] = json.dumps(value)
    else:
        event[name] = ",".join(value)
    return name


def _timestamp_format(rng, event, moment, previous_moment) -> str:
    variant = rng.randrange(3)
    if variant == 0:
        event["event_time"] = f"{moment.month}/{moment.day}/{moment:%y} {moment.hour}:{moment:%M}"
    elif variant == 1:
        event["event_time"] = f"{moment:%Y-%m-%d %H:%M:%S}"
    else:
        event["event_time"] = int(moment.timestamp() * 1000)
    return "event_time"


def _nonpositive_price(rng, event, moment, previous_moment) -> str:
    container, path = _slot(rng, event, "unit_price")
    container["unit_price"] = rng.choice((0.0, -container["unit_price"]))
    return path


def _currency_string(rng, event, moment, previous_moment) -> str:
    container, path = _slot(rng, event, "unit_price")
    container["unit_price"] = f"£{container['unit_price']:.2f}"
    return path


def _unknown_product_id(rng, event, moment, previous_moment) -> str:
    container, path = _slot(rng, event, "product_id")
    # Catalog ids have five digits, so a six-digit id is known not to exist.
    container["product_id"] = f"P{rng.randrange(100_000, 1_000_000)}"
    return path


def _out_of_order(rng, event, moment, previous_moment) -> str:
    earlier = min(moment, previous_moment) - timedelta(seconds=rng.uniform(60, 7200))
    event["event_time"] = format_event_time(earlier)
    return "event_time"


def _future_timestamp(rng, event, moment, previous_moment) -> str:
    later = moment.astimezone(UTC) + timedelta(days=rng.uniform(20 * 365, 30 * 365))
    event["event_time"] = format_event_time(later)
    return "event_time"


def _oversized_payload(rng, event, moment, previous_moment) -> str:
    contract = CONTRACTS[event["event_type"]]
    text_fields = [
        spec.name
        for spec in contract.fields
        if spec.dtype == "str" and spec.name != contract.key_field and event[spec.name] is not None
    ]
    name = text_fields[0] if text_fields else contract.key_field
    event[name] += "x" * (OVERSIZED_BYTES + rng.randrange(1, 4096))
    return name


_CORRUPTERS = {
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "timestamp_format": _timestamp_format,
    "nonpositive_price": _nonpositive_price,
    "currency_string": _currency_string,
    "unknown_product_id": _unknown_product_id,
    "out_of_order": _out_of_order,
    "future_timestamp": _future_timestamp,
    "oversized_payload": _oversized_payload,
}


def _has(event: dict, name: str) -> bool:
    return name in event or "lines" in event


def _slot(rng: random.Random, event: dict, name: str) -> tuple[dict, str]:
    """The dict holding `name` (the event, or a random order line) and its path for the truth."""
    if name in event:
        return event, name
    index = rng.randrange(len(event["lines"]))
    return event["lines"][index], f"lines[{index}].{name}"
