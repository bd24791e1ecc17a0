"""The vocabulary contracts are declared in: field specs, value rules and event contracts.

A contract is data, not code, so the event builder and the Pandera schemas can both be derived
from the one declaration in `pulsemart.contracts.events` and can never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

SCHEMA_VERSION = "1"

# The Python shapes a field value may take in a decoded event.
DTYPES = ("str", "int", "float", "bool", "str_list", "lines", "shown_items")

# Offsets are required so a timestamp names one instant; "T" is required because the
# formats dirty sources send instead ("2024-03-01 10:00:00", "12/1/10 8:26") lack it.
_ISO8601 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


class Rule(NamedTuple):
    """One value constraint, e.g. Rule("gt", 0); `describe()` is its name in failure reports."""

    kind: str
    args: tuple

    def describe(self) -> str:
        return f"{self.kind}({', '.join(map(repr, self.args))})"


def gt(bound: float) -> Rule:
    return Rule("gt", (bound,))


def ge(bound: float) -> Rule:
    return Rule("ge", (bound,))


def lt(bound: float) -> Rule:
    return Rule("lt", (bound,))


def ne(value: float) -> Rule:
    return Rule("ne", (value,))


def isin(*values: str) -> Rule:
    return Rule("isin", values)


def str_length(min_length: int, max_length: int) -> Rule:
    return Rule("str_length", (min_length, max_length))


def matches(pattern: str) -> Rule:
    return Rule("matches", (pattern,))


def iso8601() -> Rule:
    return Rule("iso8601", ())


def is_iso8601(value: str) -> bool:
    if not _ISO8601.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class FieldSpec:
    """A top-level field of an event (or of an order line).

    `required`: the builder refuses an event without it and the schema requires the column.
    `nullable`: None is a valid value. Optional fields (required=False) default to None.
    """

    name: str
    dtype: str
    required: bool = True
    nullable: bool = False
    rules: tuple[Rule, ...] = ()
    doc: str = ""

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"field {self.name!r}: dtype {self.dtype!r} not one of {DTYPES}")
        if not self.required and not self.nullable:
            raise ValueError(f"field {self.name!r}: an optional field must be nullable")


@dataclass(frozen=True)
class EventContract:
    """Everything producers and validators need to know about one event type."""

    event_type: str
    topic: str
    key_field: str
    fields: tuple[FieldSpec, ...]
    doc: str = ""
    # Only for events with a `lines` field: the fields of each order line.
    line_fields: tuple[FieldSpec, ...] = ()

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.event_type} has no field {name!r}")


def value_matches_dtype(value: Any, dtype: str) -> bool:
    """Whether a decoded JSON value has the shape `dtype` promises (None is checked elsewhere)."""
    if dtype == "str":
        return isinstance(value, str)
    if dtype == "int":
        return _is_integer(value)
    if dtype == "float":
        return _is_number(value)
    if dtype == "bool":
        return isinstance(value, bool)
    if dtype == "str_list":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if dtype == "lines":
        return isinstance(value, list) and bool(value) and all(isinstance(i, dict) for i in value)
    if dtype == "shown_items":
        return isinstance(value, list) and all(_is_shown_item(i) for i in value)
    raise ValueError(f"unknown dtype {dtype!r}")


def _is_shown_item(item: Any) -> bool:
    """One product of an exposure: {product_id: str, position: int >= 1, because: [str]}."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("product_id"), str)
        and 1 <= len(item["product_id"]) <= 64
        and _is_integer(item.get("position"))
        and item["position"] >= 1
        and isinstance(item.get("because"), list)
        and all(isinstance(p, str) for p in item["because"])
    )


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    # pandas turns an int column holding a missing value into floats; 3.0 is still a count.
    return (isinstance(value, float) and value.is_integer()) or _is_numpy_integer(value)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or _is_numpy_integer(value)


def _is_numpy_integer(value: Any) -> bool:
    # numpy integers do not subclass int; checking the type name keeps numpy out of the core.
    return type(value).__module__ == "numpy" and "int" in type(value).__name__


def rule_holds(rule: Rule, value: Any) -> bool:
    """Whether `value` satisfies `rule`.

    Values of the wrong type pass: the dtype check reports them, once.
    """
    kind, args = rule
    if kind in ("gt", "ge", "lt", "ne"):
        if not _is_number(value):
            return True
        bound = args[0]
        if kind == "gt":
            return value > bound
        if kind == "ge":
            return value >= bound
        if kind == "lt":
            return value < bound
        return value != bound
    if not isinstance(value, str):
        return True
    if kind == "isin":
        return value in args
    if kind == "str_length":
        return args[0] <= len(value) <= args[1]
    if kind == "matches":
        return re.fullmatch(args[0], value) is not None
    if kind == "iso8601":
        return is_iso8601(value)
    raise ValueError(f"unknown rule {kind!r}")
