"""Changing what serves: score a version, promote it, roll back, each step audited.

The API serves the version in `serving.model_deployments`, and only once that version's
recommendations are written: scoring commits first, then the registry's `champion` alias
moves (ml.registry), then the deployment row and the audit rows change in one transaction.
A failure part-way leaves the API serving the version it served before.

Callers point MLflow at the store first (`ml.registry.configure`). Functions that commit say so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import psycopg

from ml import registry
from pulsemart.ml_store.records import audit
from pulsemart.ml_store.scoring import (
    Recommend,
    has_recommendations,
    prune,
    set_deployment,
    write_recommendations,
)
from pulsemart.ml_store.training import known_customers


class LifecycleError(RuntimeError):
    """A promotion or rollback that cannot happen as asked; the message says why."""


@dataclass(frozen=True)
class ScoreReport:
    model_name: str
    model_version: str
    customers: int
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def load_recommend(model_name: str, version: str) -> Recommend:
    """The registered version as a (customer keys, k) -> recommendations function."""
    mlflow = registry.load_mlflow()
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")

    def recommend(customers, k: int) -> pd.DataFrame:
        return model.predict(pd.DataFrame({"customer_id": list(customers)}), params={"k": int(k)})

    return recommend


def score_version(conn: psycopg.Connection, model_name: str, version: str,
                  recommend: Recommend | None = None) -> ScoreReport:
    """Rank products for every known customer with `version` (in the caller's transaction)."""
    started = time.perf_counter()
    recommend = recommend or load_recommend(model_name, version)
    customers = known_customers(conn)
    rows = write_recommendations(conn, model_name, str(version), recommend, customers)
    return ScoreReport(model_name, str(version), len(customers), rows,
                       time.perf_counter() - started)


def deploy(conn: psycopg.Connection, model_name: str, version: str, actor: str,
           details: dict | None = None) -> str | None:
    """Serve `version` (in the caller's transaction); audited when it changes. Returns the
    version served before."""
    previous = set_deployment(conn, model_name, str(version), actor)
    if previous != str(version):
        audit(conn, actor, "ml.deploy", f"{model_name}/{version}",
              {"from": previous, "to": str(version), **(details or {})})
    if model_name == registry.RECOMMENDER:
        prune(conn, model_name, keep={str(version)} | ({previous} if previous else set()))
    return previous


def refresh(conn: psycopg.Connection, model_name: str, version: str, actor: str,
            recommend: Recommend | None = None) -> ScoreReport:
    """Score `version` and serve it, in one transaction; commits."""
    try:
        report = score_version(conn, model_name, version, recommend)
        deploy(conn, model_name, version, actor, {"rows": report.rows})
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return report


@dataclass(frozen=True)
class GateOutcome:
    decision: registry.GateDecision
    challenger: str
    champion_before: str | None
    champion_after: str | None
    metric: str
    margin: float

    @property
    def promoted(self) -> bool:
        return self.champion_after == self.challenger != self.champion_before


def gate_and_promote(conn: psycopg.Connection, model_name: str, results: dict, metric: str,
                     margin: float, actor: str) -> GateOutcome:
    """Gate the challenger in `results` ({role: {"version", "metrics"}}, measured on one
    holdout) and make it the champion if it passes; audits the decision; commits.

    Serving is not switched here: the recommendations asset scores the champion, then deploys.
    """
    challenger = results["challenger"]
    evaluated = results.get("champion")
    before = registry.alias_version(model_name, registry.CHAMPION)
    if before != (evaluated["version"] if evaluated else None):
        decision = registry.GateDecision(False, f"the champion changed to {before} after the "
                                                "evaluation; evaluate again")
    else:
        decision = registry.gate(challenger["metrics"], evaluated["metrics"] if evaluated else None,
                                 results["baseline"]["metrics"], metric, margin)
    version = str(challenger["version"])
    subject = f"{model_name}/{version}"
    if decision.passed:
        registry.promote(model_name, version, reason=decision.reason)
    else:
        registry.load_mlflow().MlflowClient().set_model_version_tag(
            model_name, version, "pulsemart.gate", f"rejected: {decision.reason}")
    try:
        audit(conn, actor, "ml.gate", subject, {
            "passed": decision.passed, "reason": decision.reason, "metric": metric,
            "margin": margin, "champion": before,
            "values": {role: r["metrics"].get(metric) for role, r in results.items()}})
        if decision.passed:
            audit(conn, actor, "ml.promote", subject,
                  {"from": before, "to": version, "reason": decision.reason})
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    after = version if decision.passed else before
    return GateOutcome(decision, version, before, after, metric, margin)


def promote_version(conn: psycopg.Connection, model_name: str, version: str, actor: str,
                    reason: str = "manual") -> dict:
    """Make `version` the champion and serve it; commits. Returns the registry status."""
    version = str(version)
    _require_version(model_name, version)
    previous = registry.alias_version(model_name, registry.CHAMPION)
    _ensure_scored(conn, model_name, version, actor)
    status = registry.promote(model_name, version, reason=reason)
    _switch(conn, model_name, version, actor, "ml.promote", previous, reason)
    return status


def rollback_version(conn: psycopg.Connection, model_name: str, actor: str,
                     reason: str = "manual") -> dict:
    """Restore the champion before the current one and serve it; commits."""
    before = model_status(model_name)
    if not before["previous_champions"]:
        raise LifecycleError(f"{model_name}: no previous champion to roll back to "
                             f"(champion: {before['champion'] or 'none'})")
    restored = str(before["previous_champions"][-1])
    _ensure_scored(conn, model_name, restored, actor)
    status = registry.rollback(model_name, reason=reason)
    _switch(conn, model_name, restored, actor, "ml.rollback", before["champion"], reason)
    return status


def champion_version(model_name: str) -> str | None:
    """The registry's champion, or None (also when nothing is registered under the name)."""
    from mlflow.exceptions import MlflowException

    try:
        return registry.alias_version(model_name, registry.CHAMPION)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None


def _ensure_scored(conn, model_name: str, version: str, actor: str) -> None:
    """A recommender version gets its recommendations before it serves (kept ones are reused)."""
    if model_name != registry.RECOMMENDER or has_recommendations(conn, model_name, version):
        conn.rollback()  # end the read transaction: nothing to write
        return
    try:
        report = score_version(conn, model_name, version)
        audit(conn, actor, "ml.score", f"{model_name}/{version}",
              {"rows": report.rows, "customers": report.customers, "seconds": report.seconds})
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _switch(conn, model_name, version, actor, action, previous, reason) -> None:
    try:
        audit(conn, actor, action, f"{model_name}/{version}",
              {"from": previous, "to": version, "reason": reason})
        deploy(conn, model_name, version, actor)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def model_status(model_name: str) -> dict:
    """ml.registry.status, or LifecycleError when nothing is registered under the name."""
    from mlflow.exceptions import MlflowException

    try:
        return registry.status(model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise LifecycleError(f"no registered model named {model_name!r} yet: run the ml_train "
                             "job first") from exc


def _require_version(model_name: str, version: str) -> None:
    known = [v["version"] for v in model_status(model_name)["versions"]]
    if version not in known:
        raise LifecycleError(f"{model_name} has no version {version!r}; versions: "
                             f"{', '.join(known) or 'none'}")
