"""The MLflow model registry: versions, the champion alias, and the tags that explain them.

Two registered models (ml.names). The version aliased `champion` is the one record of what
serves; a newly trained version is aliased `challenger` until the gate decides. Each time a
version becomes champion it is tagged with the moment (`pulsemart.promoted_at`); a champion
that is rolled back is tagged too (`pulsemart.rolled_back_at`). The version to roll back to is
derived from those tags: the most recently promoted version other than the champion that was
not rolled back since. So MLflow's own version history is the rollback history, with no list
kept beside it.

These are the registry's primitives; the decisions (gate, promote, roll back, and what the API
serves) are pulsemart.ml_store.lifecycle's. No Dagster here, and MLflow only inside functions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ml.names import PROPENSITY, RECOMMENDER
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

CHAMPION, CHALLENGER = "champion", "challenger"
PROMOTED_AT = "pulsemart.promoted_at"  # ISO time, microseconds: sorts as text
PROMOTION_REASON = "pulsemart.promotion_reason"
ROLLED_BACK_AT = "pulsemart.rolled_back_at"
GATE = "pulsemart.gate"  # "passed: <reason>" or "rejected: <reason>"
ONLINE_GATE = "pulsemart.online_gate"  # the same, for the online experiment's gate
ONLINE_EVIDENCE = "pulsemart.online_evidence"  # JSON: the experiment's figures for the version


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


def record_gate(name: str, version: str, passed: bool, reason: str) -> None:
    _client().set_model_version_tag(
        name, str(version), GATE, f"{'passed' if passed else 'rejected'}: {reason}"
    )


def tag_online_evidence(
    name: str, version: str, passed: bool, reason: str, evidence: dict, description: str
) -> None:
    """Record an online experiment's verdict on `version`: the verdict and the figures as
    tags, and `description` as the version's description, which the MLflow UI shows first."""
    client = _client()
    version = str(version)
    client.set_model_version_tag(
        name, version, ONLINE_GATE, f"{'passed' if passed else 'rejected'}: {reason}"
    )
    client.set_model_version_tag(
        name, version, ONLINE_EVIDENCE, json.dumps(evidence, sort_keys=True, default=str)
    )
    client.update_model_version(name, version, description=description)


def set_champion(name: str, version: str, reason: str) -> str | None:
    """Alias `version` champion (it stops being challenger); returns the champion before."""
    client = _client()
    version = str(version)
    client.get_model_version(name, version)  # fails clearly when there is no such version
    before = alias_version(name, CHAMPION)
    if before == version:
        return before
    client.set_model_version_tag(name, version, PROMOTED_AT, _now())
    client.set_model_version_tag(name, version, PROMOTION_REASON, reason)
    client.set_registered_model_alias(name, CHAMPION, version)
    if alias_version(name, CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    return before


def previous_champion(versions: list[dict[str, Any]], champion: str | None) -> str | None:
    """The version a rollback restores: the latest promoted one other than `champion` that was
    not rolled back after its promotion. `versions` as in `status` (each with its tags)."""
    candidates = [
        (v["tags"][PROMOTED_AT], v["version"])
        for v in versions
        if v["version"] != champion
        and PROMOTED_AT in v["tags"]
        and v["tags"].get(ROLLED_BACK_AT, "") <= v["tags"][PROMOTED_AT]
    ]
    return max(candidates)[1] if candidates else None


def roll_back(name: str) -> tuple[str | None, str]:
    """Tag the champion rolled back and alias the previous champion; returns (from, to).

    Raises ValueError when there is no previous champion."""
    state = status(name)
    restored = state["previous_champion"]
    if restored is None:
        raise ValueError(
            f"{name}: no previous champion to roll back to "
            f"(champion: {state['champion'] or 'none'})"
        )
    client = _client()
    if state["champion"] is not None:
        client.set_model_version_tag(name, state["champion"], ROLLED_BACK_AT, _now())
    client.set_registered_model_alias(name, CHAMPION, restored)
    return state["champion"], restored


def status(name: str) -> dict[str, Any]:
    """Champion, challenger, the version a rollback would restore, and every version with its
    run's metrics and its tags."""
    client = _client()
    model = client.get_registered_model(name)
    found = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    versions = [
        {
            "version": str(v.version),
            "run_id": v.run_id,
            "created": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).isoformat(),
            "aliases": sorted(a for a, n in aliases.items() if n == str(v.version)),
            "metrics": client.get_run(v.run_id).data.metrics if v.run_id else {},
            "tags": dict(v.tags or {}),
        }
        for v in found
    ]
    return {
        "name": name,
        "champion": aliases.get(CHAMPION),
        "challenger": aliases.get(CHALLENGER),
        "previous_champion": previous_champion(versions, aliases.get(CHAMPION)),
        "versions": versions,
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _client():
    return load_mlflow().MlflowClient()


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "EXPERIMENT",
    "PROPENSITY",
    "RECOMMENDER",
    "LoggedModel",
    "alias_version",
    "artifact_root",
    "configure",
    "load_mlflow",
    "log_propensity",
    "log_recommender",
    "previous_champion",
    "record_gate",
    "register",
    "roll_back",
    "run_metrics",
    "set_challenger",
    "set_champion",
    "status",
    "tag_online_evidence",
    "tracking_uri",
]
