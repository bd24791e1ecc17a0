"""Model governance on the MLflow registry: register, gate, promote, roll back, report.

Two registered models, `pulsemart-recommender` and `pulsemart-propensity`. Serving reads the
version aliased `champion`; a newly trained version is aliased `challenger` until the gate lets
it through. Every promotion pushes the outgoing champion onto a stack kept in the registered
model's tags, so `rollback` is one step and can be repeated back through the history; the same
tags keep a log of who became champion, when and why (`status`).

No Dagster here: assets and the `pulsemart model ...` commands call these functions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ml.tracking import (
    ARTIFACT_PATH,
    EXPERIMENT,
    LoggedModel,
    artifact_root,
    configure,
    load_mlflow,
    log_propensity,
    log_recommender,
    tracking_uri,
)

RECOMMENDER = "pulsemart-recommender"
PROPENSITY = "pulsemart-propensity"
CHAMPION, CHALLENGER = "champion", "challenger"
PREVIOUS_TAG = "pulsemart.previous_champions"  # JSON list of versions, oldest first
HISTORY_TAG = "pulsemart.promotion_history"  # JSON list of {action, version, from, at, reason}
# Entries kept: a registered-model tag value holds at most 5,000 characters.
HISTORY_KEEP = 30
PREVIOUS_KEEP = 200


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str


def gate(
    challenger_metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    baseline_metrics: dict[str, float],
    metric: str = "ndcg_at_10",
    margin: float = 0.0,
) -> GateDecision:
    """Pass only if the challenger beats the baseline, and the champion by `margin` (if any).

    "Beats" is strictly greater: a tie keeps the model already serving.
    """
    value = challenger_metrics.get(metric)
    if value is None:
        return GateDecision(False, f"challenger has no {metric}")
    baseline = baseline_metrics.get(metric)
    if baseline is None:
        return GateDecision(False, f"baseline has no {metric}")
    if not value > baseline:
        return GateDecision(False, f"{metric} {value:.4f} does not beat baseline {baseline:.4f}")
    if champion_metrics is None:
        return GateDecision(True, f"{metric} {value:.4f} beats baseline {baseline:.4f}; "
                                  "no champion yet")
    champion = champion_metrics.get(metric)
    if champion is None:  # cannot compare: keep what serves, a person can still promote
        return GateDecision(False, f"champion has no {metric} to compare with")
    if not value > champion + margin:
        return GateDecision(False, f"{metric} {value:.4f} does not beat champion "
                                   f"{champion:.4f} by more than {margin:g}")
    return GateDecision(True, f"{metric} {value:.4f} beats baseline {baseline:.4f} and champion "
                              f"{champion:.4f} by more than {margin:g}")


def register(run_id: str, name: str) -> str:
    """Register the model logged in `run_id` under `name`; returns the new version number."""
    mlflow = load_mlflow()
    # MLflow 3 stores a logged model as its own entity ("models:/m-..."), not under the run's
    # artifacts; the run records it among its outputs.
    outputs = mlflow.MlflowClient().get_run(run_id).outputs
    model_ids = [o.model_id for o in (outputs.model_outputs if outputs else [])]
    uri = f"models:/{model_ids[-1]}" if model_ids else f"runs:/{run_id}/{ARTIFACT_PATH}"
    version = mlflow.register_model(uri, name)
    return str(version.version)


def set_challenger(name: str, version: str) -> None:
    _client().set_registered_model_alias(name, CHALLENGER, str(version))


def challenge(
    name: str,
    version: str,
    baseline_metrics: dict[str, float],
    metric: str = "ndcg_at_10",
    margin: float = 0.0,
) -> GateDecision:
    """Make `version` the challenger, gate it against the champion's logged metrics and the
    baseline, and promote it when it passes."""
    set_challenger(name, version)
    challenger = run_metrics(name, version)
    champion_version = alias_version(name, CHAMPION)
    champion = run_metrics(name, champion_version) if champion_version else None
    decision = gate(challenger, champion, baseline_metrics, metric, margin)
    if decision.passed:
        promote(name, version, reason=decision.reason)
    else:
        _append_history(name, {"action": "rejected", "version": str(version),
                               "reason": decision.reason})
    return decision


def promote(name: str, version: str, reason: str = "manual") -> dict[str, Any]:
    """Make `version` the champion; the outgoing champion goes on the rollback stack."""
    client = _client()
    version = str(version)
    client.get_model_version(name, version)  # fails clearly when there is no such version
    current = alias_version(name, CHAMPION)
    if current == version:
        return status(name)
    if current is not None:
        stack = _get_list(name, PREVIOUS_TAG) + [current]
        _set_list(name, PREVIOUS_TAG, stack[-PREVIOUS_KEEP:])
    client.set_registered_model_alias(name, CHAMPION, version)
    if alias_version(name, CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    _append_history(name, {"action": "promoted", "version": version, "from": current,
                           "reason": reason})
    return status(name)


def rollback(name: str, reason: str = "manual") -> dict[str, Any]:
    """Restore the champion before the current one (raises ValueError when there is none)."""
    previous = _get_list(name, PREVIOUS_TAG)
    if not previous:
        raise ValueError(f"{name}: no previous champion to roll back to")
    current = alias_version(name, CHAMPION)
    restored = previous.pop()
    client = _client()
    client.set_registered_model_alias(name, CHAMPION, restored)
    _set_list(name, PREVIOUS_TAG, previous)
    if current is not None:
        client.set_model_version_tag(name, current, "pulsemart.rolled_back_at", _now())
    _append_history(name, {"action": "rolled_back", "version": restored, "from": current,
                           "reason": reason})
    return status(name)


def status(name: str) -> dict[str, Any]:
    """Champion, challenger, every version (with its run's metrics) and the promotion history."""
    client = _client()
    model = client.get_registered_model(name)
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    return {
        "name": name,
        "champion": aliases.get(CHAMPION),
        "challenger": aliases.get(CHALLENGER),
        "previous_champions": _get_list(name, PREVIOUS_TAG),
        "versions": [
            {
                "version": str(v.version),
                "run_id": v.run_id,
                "created": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).isoformat(),
                "aliases": sorted(a for a, n in aliases.items() if n == str(v.version)),
                "metrics": client.get_run(v.run_id).data.metrics if v.run_id else {},
                "tags": dict(v.tags or {}),
            }
            for v in versions
        ],
        "history": _get_list(name, HISTORY_TAG),
    }


def alias_version(name: str, alias: str) -> str | None:
    model = _client().get_registered_model(name)
    version = (model.aliases or {}).get(alias)
    return None if version is None else str(version)


def run_metrics(name: str, version: str) -> dict[str, float]:
    """The metrics logged in the run that produced `version`."""
    client = _client()
    run_id = client.get_model_version(name, str(version)).run_id
    return dict(client.get_run(run_id).data.metrics) if run_id else {}


def _append_history(name: str, entry: dict[str, Any]) -> None:
    history = _get_list(name, HISTORY_TAG) + [{**entry, "at": _now()}]
    _set_list(name, HISTORY_TAG, history[-HISTORY_KEEP:])


def _get_list(name: str, tag: str) -> list:
    value = (_client().get_registered_model(name).tags or {}).get(tag)
    return json.loads(value) if value else []


def _set_list(name: str, tag: str, values: list) -> None:
    _client().set_registered_model_tag(name, tag, json.dumps(values, separators=(",", ":")))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _client():
    return load_mlflow().MlflowClient()


__all__ = [
    "CHALLENGER", "CHAMPION", "EXPERIMENT", "PROPENSITY", "RECOMMENDER", "GateDecision",
    "LoggedModel", "alias_version", "artifact_root", "challenge", "configure", "gate",
    "log_propensity", "log_recommender", "promote", "register", "rollback", "run_metrics",
    "set_challenger", "status", "tracking_uri",
]
