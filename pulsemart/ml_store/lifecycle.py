"""A model's life after training: gate, promote, roll back, and publish what serves.

The registry's `champion` alias (ml.registry) is the one record of which version is champion,
and the version a rollback restores is derived from the registry's version tags. What the API
serves is derived from the alias: `publish` reads it, makes sure that version's scores
(recommendations and item neighbours, or propensity) are written, and points
`serving.model_deployments` (the serving API's copy, never written any other way) at it, in
one transaction. Promotion and rollback score first,
move the alias, then publish; a failure part-way leaves the API serving what it served before,
and the next publish (the `recommendations` asset, `ml_score`, the next promotion) catches up.

Every step is audited in governance.audit_log. Database work runs in `conn.transaction()`:
its own transaction, or a savepoint in the caller's when one is open. Callers point MLflow at
the store first (pulsemart.ml_store.configure_mlflow).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ml import registry
from pulsemart.ml_store.experiments import running_versions
from pulsemart.ml_store.records import audit, recent_audit
from pulsemart.ml_store.scoring import deployed_version, has_scores, prune, set_deployment
from pulsemart.ml_store.versions import ScoreReport, score_version

SESSION = "session_hr_at_10"  # pulsemart.ml_store.evaluation.SESSION_METRICS


class LifecycleError(RuntimeError):
    """A promotion or rollback that cannot happen as asked; the message says why."""


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str


def gate(
    challenger_metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    baseline_metrics: dict[str, float],
    metric: str,
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
        return GateDecision(
            True, f"{metric} {value:.4f} beats baseline {baseline:.4f}; no champion yet"
        )
    champion = champion_metrics.get(metric)
    if champion is None:  # cannot compare: keep what serves, a person can still promote
        return GateDecision(False, f"champion has no {metric} to compare with")
    if not value > champion + margin:
        return GateDecision(
            False,
            f"{metric} {value:.4f} does not beat champion {champion:.4f} by more than {margin:g}",
        )
    return GateDecision(
        True,
        f"{metric} {value:.4f} beats baseline {baseline:.4f} and champion "
        f"{champion:.4f} by more than {margin:g}",
    )


@dataclass(frozen=True)
class GateOutcome:
    decision: GateDecision
    challenger: str
    champion_before: str | None
    champion_after: str | None
    metric: str
    margin: float

    @property
    def promoted(self) -> bool:
        return self.champion_after == self.challenger != self.champion_before


def gate_and_promote(
    conn: psycopg.Connection, model_name: str, results: dict, metric: str, margin: float, actor: str
) -> GateOutcome:
    """Gate the challenger in `results` ({role: {"version", "metrics"}}, measured on one
    holdout) and make it the champion if it passes; audited. Serving follows at the next
    `publish` (the recommendations asset scores the champion first)."""
    challenger = results["challenger"]
    evaluated = results.get("champion")
    before = registry.alias_version(model_name, registry.CHAMPION)
    if before != (evaluated["version"] if evaluated else None):
        decision = GateDecision(
            False, f"the champion changed to {before} after the evaluation; evaluate again"
        )
    else:
        decision = gate(
            challenger["metrics"],
            evaluated["metrics"] if evaluated else None,
            results["baseline"]["metrics"],
            metric,
            margin,
        )
    version = str(challenger["version"])
    registry.record_gate(model_name, version, decision.passed, decision.reason)
    if decision.passed:
        registry.set_champion(model_name, version, decision.reason)
    subject = f"{model_name}/{version}"
    with conn.transaction():
        audit(
            conn,
            actor,
            "ml.gate",
            subject,
            {
                "passed": decision.passed,
                "reason": decision.reason,
                "metric": metric,
                "margin": margin,
                "champion": before,
                "values": {role: r["metrics"].get(metric) for role, r in results.items()},
                # Beside the gate's metric, not gated on: the session replay's HR@10.
                "session_values": {r: e["metrics"].get(SESSION) for r, e in results.items()},
            },
        )
        if decision.passed:
            audit(
                conn,
                actor,
                "ml.promote",
                subject,
                {"from": before, "to": version, "reason": decision.reason},
            )
    return GateOutcome(
        decision, version, before, version if decision.passed else before, metric, margin
    )


def promote_version(
    conn: psycopg.Connection, model_name: str, version: str, actor: str, reason: str = "manual"
) -> dict:
    """Make `version` the champion and serve it. Returns the registry status."""
    version = str(version)
    known = [v["version"] for v in model_status(model_name)["versions"]]
    if version not in known:
        raise LifecycleError(
            f"{model_name} has no version {version!r}; versions: {', '.join(known) or 'none'}"
        )
    _ensure_scored(conn, model_name, version, actor)
    before = registry.set_champion(model_name, version, reason)
    with conn.transaction():
        audit(
            conn,
            actor,
            "ml.promote",
            f"{model_name}/{version}",
            {"from": before, "to": version, "reason": reason},
        )
        publish(conn, model_name, actor)
    return model_status(model_name)


def rollback_version(
    conn: psycopg.Connection, model_name: str, actor: str, reason: str = "manual"
) -> dict:
    """Restore the previous champion (ml.registry.previous_champion) and serve it."""
    before = model_status(model_name)
    restored = before["previous_champion"]
    if restored is None:
        raise LifecycleError(
            f"{model_name}: no previous champion to roll back to "
            f"(champion: {before['champion'] or 'none'})"
        )
    _ensure_scored(conn, model_name, restored, actor)
    replaced, restored = registry.roll_back(model_name)
    with conn.transaction():
        audit(
            conn,
            actor,
            "ml.rollback",
            f"{model_name}/{restored}",
            {"from": replaced, "to": restored, "reason": reason},
        )
        publish(conn, model_name, actor)
    return model_status(model_name)


def publish(
    conn: psycopg.Connection, model_name: str, actor: str, rescore: bool = False
) -> tuple[str | None, ScoreReport | None]:
    """Serve the registry's champion: score it when it has no scores (or always, with
    `rescore`), then switch serving.model_deployments to it; one transaction, audited when the
    version served changes. Returns (the champion or None, the scoring report or None)."""
    version = champion_version(model_name)
    if version is None:
        return None, None
    report = None
    with conn.transaction():
        if rescore or not has_scores(conn, model_name, version):
            report = score_version(conn, model_name, version)
        previous = set_deployment(conn, model_name, version, actor)
        if previous != version:
            audit(
                conn,
                actor,
                "ml.deploy",
                f"{model_name}/{version}",
                {"from": previous, "to": version, **(report.counts() if report else {})},
            )
        # A running experiment's challengers keep their scores while it serves them.
        keep = {version} | ({previous} if previous else set()) | running_versions(conn, model_name)
        prune(conn, model_name, keep=keep)
    return version, report


def _ensure_scored(conn: psycopg.Connection, model_name: str, version: str, actor: str) -> None:
    """A version gets its scores before it serves (kept ones are reused), so switching the
    alias and the deployment after this is instant."""
    with conn.transaction():
        if has_scores(conn, model_name, version):
            return
        report = score_version(conn, model_name, version)
        audit(
            conn,
            actor,
            "ml.score",
            f"{model_name}/{version}",
            {**report.counts(), "customers": report.customers, "seconds": report.seconds},
        )


def champion_version(model_name: str) -> str | None:
    """The registry's champion, or None (also when nothing is registered under the name)."""
    from mlflow.exceptions import MlflowException

    try:
        return registry.alias_version(model_name, registry.CHAMPION)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None


def model_status(model_name: str) -> dict:
    """ml.registry.status, or LifecycleError when nothing is registered under the name."""
    from mlflow.exceptions import MlflowException

    try:
        return registry.status(model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise LifecycleError(
            f"no registered model named {model_name!r} yet: run the ml_train job first"
        ) from exc


def serving_status(conn: psycopg.Connection, model_name: str, limit: int = 15) -> dict:
    """What the API serves and the model's latest audited lifecycle steps, newest first."""
    with conn.transaction():
        return {
            "deployed": deployed_version(conn, model_name),
            "history": recent_audit(conn, model_name, limit),
        }
