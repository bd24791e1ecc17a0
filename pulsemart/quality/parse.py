"""Decoding raw Kafka records into event dicts, never raising.

A record that cannot become an event (a tombstone, an empty value, oversized, not UTF-8,
not JSON, not an object, an unknown event type, no usable event_id) gets one explicit reason
and goes straight to quarantine; everything else goes on to the rules.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

import pandas as pd

from pulsemart.contracts import CONTRACTS

# A cut-short record still usually names its event; evaluations and stewards can find it.
_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([^"\\]{1,64})"')


@dataclass
class Parsed:
    """Per input row (aligned with the raw frame's positions)."""

    events: list[dict | None]
    texts: list[str | None]  # the value as text (None when not UTF-8 or absent)
    reasons: list[str | None]  # why a record could not be parsed, else None
    event_ids: list[str | None]
    event_types: list[str | None]


def parse_values(values: list, max_bytes: int) -> Parsed:
    events, texts, reasons, ids, types = [], [], [], [], []
    for value in values:
        event, text, reason = _parse_one(value, max_bytes)
        events.append(event)
        texts.append(text)
        reasons.append(reason)
        if event is not None:
            ids.append(event.get("event_id"))
            types.append(event.get("event_type"))
        else:
            ids.append(_sniff_event_id(value))
            types.append(None)
    return Parsed(events, texts, reasons, ids, types)


def _parse_one(value, max_bytes: int) -> tuple[dict | None, str | None, str | None]:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if value is None or (isinstance(value, float) and pd.isna(value)):
        # A null value is Kafka's tombstone (delete this key, in a compacted topic). It is not
        # an empty event: a producer meant it, and a steward should see it apart.
        return None, None, "tombstone"
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
    if not isinstance(value, (bytes, bytearray)):
        return None, None, "not_bytes"
    if not value:
        return None, "", "empty_value"
    if len(value) > max_bytes:
        return None, None, "oversized_payload"
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None, None, "not_utf8"
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        return None, text, "malformed_json"
    if not isinstance(event, dict):
        return None, text, "not_an_object"
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or event_type not in CONTRACTS:
        return None, text, "unknown_event_type"
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 64:
        return None, text, "invalid_event_id"
    return event, text, None


def _sniff_event_id(value) -> str | None:
    if isinstance(value, memoryview):
        value = value.tobytes()
    if not isinstance(value, (bytes, bytearray)):
        return None
    match = _EVENT_ID.search(bytes(value[:4096]))
    if match is None:
        return None
    try:
        return match.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None


def payload_text(value, text: str | None) -> tuple[str | None, str]:
    """The stored form of a raw value: its text, or base64 when it is not UTF-8."""
    if text is not None:
        return text, "utf-8"
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii"), "base64"
    return None, "none"
