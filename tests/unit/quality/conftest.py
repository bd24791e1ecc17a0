import json

import pandas as pd
import pytest

from pulsemart.contracts import build_event, encode_event, key_for, topic_for
from pulsemart.quality import CatalogState, run_batch

NOW = pd.Timestamp("2026-11-26T12:00:00Z")
T0 = "2024-03-01T10:00:00.000Z"


def product(pid="P00001", price=2.55, description="RED MUG", moment=T0, **extra):
    return build_event(
        "product_upserted",
        event_id=f"up-{pid}-{price}",
        event_time=moment,
        product_id=pid,
        description=description,
        category="kitchen",
        unit_price=price,
        currency="GBP",
        stock=10,
        customization_options=[],
        **extra,
    )


def view(eid="v1", pid="P00001", price=2.55, moment="2024-03-01T10:05:00.000Z", **overrides):
    event = build_event(
        "product_viewed",
        event_id=eid,
        event_time=moment,
        customer_id="C000001",
        session_id="S1",
        product_id=pid,
        category="kitchen",
        unit_price=price,
    )
    event.update(overrides)
    return event


def order(eid="o1", lines=None, event_type="order_placed", customer="C000001", **overrides):
    default = [{"line_id": 1, "product_id": "P00001", "quantity": 2, "unit_price": 2.55}]
    fields = {
        "order_id": "SO1",
        "customer_id": customer,
        "lines": default,
        "country": "United Kingdom",
        "currency": "GBP",
    }
    event = build_event(event_type, event_id=eid, event_time="2024-03-01T10:06:00.000Z", **fields)
    event["lines"] = lines or default  # as sent: may hold fields the contract lacks
    event.update(overrides)
    return event


def raw(*events, start=0, values=None):
    """Raw rows for events (dicts are encoded; bytes are sent as they are)."""
    rows = []
    for n, event in enumerate(events):
        if isinstance(event, dict):
            value = json.dumps(event).encode()
            topic = (
                topic_for(event["event_type"])
                if event.get("event_type")
                in (
                    "product_upserted",
                    "price_changed",
                    "availability_changed",
                    "product_customized",
                )
                else "shop.events"
            )
            try:
                key = key_for(event)
            except (KeyError, ValueError):
                key = None
        else:
            value, topic, key = event, "shop.events", None
        rows.append((topic, 0, start + n, key.encode() if key else None, value))
    return pd.DataFrame(rows, columns=["topic", "partition", "offset", "key", "value"])


def decide(*events, catalog=None, **kwargs):
    kwargs.setdefault("now", NOW)
    return run_batch(raw(*events), catalog or CatalogState(), **kwargs)


def catalog_with(*products):
    return decide(*products).catalog


def only(result):
    """The one decision of a one-record batch: (decision, row as dict)."""
    for name in ("clean", "quarantine", "held"):
        frame = getattr(result, name)
        if len(frame):
            row = frame.iloc[0].to_dict()
            return row.get("decision", name if name != "quarantine" else "quarantined"), row
    raise AssertionError("no decision")


@pytest.fixture
def catalog():
    return catalog_with(product())


__all__ = [
    "NOW",
    "T0",
    "catalog_with",
    "decide",
    "encode_event",
    "only",
    "order",
    "product",
    "raw",
    "view",
]
