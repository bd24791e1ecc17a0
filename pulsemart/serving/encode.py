"""The API's JSON encoding: orjson, with numeric values PostgreSQL sends as Decimal."""

from __future__ import annotations

from decimal import Decimal

import orjson


def _default(value):
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def json_body(content) -> bytes:
    return orjson.dumps(content, default=_default)
