"""The rule set: a versioned YAML file a data steward can read, loaded into plain dataclasses.

The file names detectors, repairs and confidence sources by their registered names
(`detectors.DETECTORS`, `repairs.REPAIRS`, `repairs.CONFIDENCE_SOURCES`); loading fails with
a message naming the rule when a name or a field is wrong, so a bad edit never reaches a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pulsemart.contracts import EVENT_TYPES

SEVERITIES = ("error", "warning", "info")
SCOPES = ("event", "line")
LINE_EVENT_TYPES = ("order_placed", "order_cancelled")


class RuleSetError(ValueError):
    """The rule file is not valid; the message names the rule and the problem."""


@dataclass(frozen=True)
class Step:
    """A registered function (detector or repair) and its parameters."""

    name: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    event_types: tuple[str, ...]
    fields: tuple[str, ...]
    detect: Step
    scope: str = "event"
    severity: str = "error"  # error: repair or quarantine; warning/info: flag and accept
    repair: Step | None = None
    hold: bool = False  # an error that waits for the catalog instead of quarantining at once
    weight: float = 0.0
    confidence: Any = 1.0  # a number, or {"from": source, ...params}
    exempts: tuple[str, ...] = ()  # fields later rules and the contract leave alone


@dataclass(frozen=True)
class Thresholds:
    fix_confidence: float = 0.8
    min_score: float = 0.5


@dataclass(frozen=True)
class Settings:
    max_payload_bytes: int = 1024 * 1024
    future_tolerance_seconds: float = 86_400.0
    hold_timeout_seconds: float = 900.0
    price_history_size: int = 20
    sample_size: int = 5


@dataclass(frozen=True)
class RuleSet:
    version: str
    thresholds: Thresholds
    settings: Settings
    rules: tuple[Rule, ...]

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def default_rules_path() -> Path:
    return Path(str(resources.files("pulsemart.quality") / "rules" / "v1.yaml"))


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rule set in `path` (default: the packaged `rules/v1.yaml`)."""
    text = Path(path or default_rules_path()).read_text(encoding="utf-8")
    return parse_rules(yaml.safe_load(text))


def parse_rules(document: dict) -> RuleSet:
    from pulsemart.quality.detectors import DETECTORS
    from pulsemart.quality.repairs import CONFIDENCE_SOURCES, REPAIRS

    if not isinstance(document, dict) or "version" not in document:
        raise RuleSetError("a rule file is a mapping with a 'version'")
    rules, seen = [], set()
    for raw in document.get("rules") or []:
        rule = _rule(raw)
        if rule.id in seen:
            raise RuleSetError(f"rule {rule.id!r} is declared twice")
        seen.add(rule.id)
        if rule.detect.name not in DETECTORS:
            raise RuleSetError(f"rule {rule.id!r}: unknown detector {rule.detect.name!r}")
        if rule.repair and rule.repair.name not in REPAIRS:
            raise RuleSetError(f"rule {rule.id!r}: unknown repair {rule.repair.name!r}")
        if isinstance(rule.confidence, dict):
            if rule.confidence.get("from") not in CONFIDENCE_SOURCES:
                raise RuleSetError(f"rule {rule.id!r}: unknown confidence source")
        elif not 0.0 <= float(rule.confidence) <= 1.0:
            raise RuleSetError(f"rule {rule.id!r}: confidence must be between 0 and 1")
        rules.append(rule)
    return RuleSet(
        version=str(document["version"]),
        thresholds=Thresholds(**(document.get("thresholds") or {})),
        settings=Settings(**(document.get("settings") or {})),
        rules=tuple(rules),
    )


def _rule(raw: dict) -> Rule:
    rule_id = raw.get("id") if isinstance(raw, dict) else None
    if not rule_id:
        raise RuleSetError(f"every rule needs an id: {raw!r}")
    try:
        types = raw.get("event_types", "all")
        types = tuple(EVENT_TYPES) if types == "all" else tuple(types)
        unknown = set(types) - set(EVENT_TYPES)
        if unknown:
            raise RuleSetError(f"unknown event types {sorted(unknown)}")
        rule = Rule(
            id=rule_id,
            description=str(raw["description"]).strip(),
            event_types=types,
            fields=tuple(raw.get("fields") or ()),
            detect=_step(raw["detect"]),
            scope=raw.get("scope", "event"),
            severity=raw.get("severity", "error"),
            repair=_step(raw["repair"]) if raw.get("repair") else None,
            hold=bool(raw.get("hold", False)),
            weight=float(raw.get("weight", 1.0 if raw.get("severity", "error") == "error" else 0)),
            confidence=raw.get("confidence", 1.0),
            exempts=tuple(raw.get("exempts") or ()),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise RuleSetError(f"rule {rule_id!r}: {error}") from None
    if rule.scope not in SCOPES or rule.severity not in SEVERITIES:
        raise RuleSetError(f"rule {rule_id!r}: scope must be {SCOPES}, severity {SEVERITIES}")
    if rule.scope == "line" and set(rule.event_types) - set(LINE_EVENT_TYPES):
        raise RuleSetError(f"rule {rule_id!r}: line rules apply to order events only")
    if not 0.0 <= rule.weight <= 1.0:
        raise RuleSetError(f"rule {rule_id!r}: weight must be between 0 and 1")
    return rule


def _step(raw: Any) -> Step:
    if isinstance(raw, str):
        return Step(raw)
    params = {k: v for k, v in raw.items() if k != "name"}
    return Step(raw["name"], params.get("params", params))
