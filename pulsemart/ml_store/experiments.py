"""Online experiments: a challenger served to a share of the shoppers, or scored in its shadow.

An experiment lives in `serving.experiments` and its variants in `serving.experiment_variants`
(migration 013); `serving.model_deployments` keeps the champion. The API reads the running
experiment in the same statement as the rest of an answer (pulsemart.serving.personal), so it
follows a start or a stop within the response cache's staleness bound.

- A split variant owns the buckets [low, high) of `bucket(experiment_id, unit)`, the unit
  being the customer (the session for an anonymous shopper): stable for a shopper within an
  experiment, reshuffled between experiments. The champion serves the buckets left over.
- A shadow experiment has one variant: for its share of the buckets the API also blends the
  challenger's answer and logs it in the exposure (`shadow_items`), never shows it.
- `popularity` is a built-in challenger: no model rows, so the blend serves trending products.

Every step is audited in governance.audit_log (`ml.experiment.start|stop|promote|discard`),
in the same transaction as the change. Starting a second experiment on a model is refused,
by `running` here and by the partial unique index in the table.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime

import psycopg

from ml.names import POPULARITY
from pulsemart.ml_store.records import audit
from pulsemart.ml_store.scoring import deployed_version, has_scores
from pulsemart.store.rows import one_row

STATUSES = ("running", "stopped", "promoted", "discarded")
CONCLUSIONS = ("promote", "discard")
_BUCKETS = 2**48  # serving.experiment_bucket keeps 48 bits of the md5


class ExperimentError(ValueError):
    """An experiment that cannot start or end as asked; the message says why."""


@dataclass(frozen=True)
class Variant:
    name: str
    model_version: str
    share: float
    low: float
    high: float


@dataclass(frozen=True)
class Experiment:
    experiment_id: int
    model_name: str
    champion_version: str | None
    shadow: bool
    status: str
    started_at: datetime
    started_by: str
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None
    variants: tuple[Variant, ...] = field(default=())

    @property
    def shares(self) -> dict[str, float]:
        """The configured share of each arm the shopper can see (a shadow shows the champion)."""
        if self.shadow:
            return {"champion": 1.0}
        shown = {v.name: v.share for v in self.variants}
        return {"champion": max(0.0, 1.0 - sum(shown.values())), **shown}

    def as_dict(self) -> dict:
        document = asdict(self)
        for key in ("started_at", "ended_at"):
            document[key] = document[key].isoformat() if document[key] else None
        document["shares"] = self.shares
        return document


def bucket(experiment_id: int, unit: str) -> float:
    """serving.experiment_bucket in Python: the shopper's place in [0, 1)."""
    digest = hashlib.md5(f"{experiment_id}:{unit}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:12], 16) / _BUCKETS


def plan_variants(challengers: list[tuple[str, float]], shadow: bool) -> list[Variant]:
    """The variants of a new experiment from (version, share) pairs, with their bucket ranges;
    ExperimentError for a share outside (0, 1], shares summing above 1, a version named twice,
    or a shadow experiment of more than one challenger."""
    if not challengers:
        raise ExperimentError("an experiment needs a challenger (--challenger VERSION)")
    if shadow and len(challengers) > 1:
        raise ExperimentError("a shadow experiment has one challenger")
    versions = [str(v) for v, _ in challengers]
    if len(set(versions)) != len(versions):
        raise ExperimentError(f"a challenger is named twice: {', '.join(versions)}")
    for version, share in challengers:
        if not (isinstance(share, (int, float)) and math.isfinite(share) and 0 < share <= 1):
            raise ExperimentError(f"share {share!r} of {version} is outside (0, 1]")
    total = sum(share for _, share in challengers)
    if total > 1 + 1e-9:
        raise ExperimentError(f"shares sum to {total:g}, above 1: nothing would be left")
    variants, low = [], 0.0
    for n, (version, share) in enumerate(challengers, start=1):
        name = "shadow" if shadow else ("challenger" if n == 1 else f"challenger_{n}")
        high = min(1.0, low + share)
        variants.append(Variant(name, str(version), float(share), low, high))
        low = high
    return variants


def start(
    conn: psycopg.Connection,
    model_name: str,
    challengers: list[tuple[str, float]],
    actor: str,
    shadow: bool = False,
    reason: str = "manual",
) -> Experiment:
    """Start an experiment on `model_name`; the API follows on its next request. A challenger
    must be scored already (serving.recommendations) or be `popularity`."""
    variants = plan_variants(challengers, shadow)
    with conn.transaction():
        current = running(conn, model_name)
        if current is not None:
            raise ExperimentError(
                f"experiment {current.experiment_id} is already running on {model_name}: "
                "stop or conclude it first"
            )
        champion = deployed_version(conn, model_name)
        for variant in variants:
            if variant.model_version == champion:
                raise ExperimentError(
                    f"version {champion} is the champion: a challenger must be another"
                )
            if variant.model_version != POPULARITY and not has_scores(
                conn, model_name, variant.model_version
            ):
                raise ExperimentError(
                    f"{model_name} version {variant.model_version} has no scores to serve: "
                    f"score it first (or use {POPULARITY!r})"
                )
        (experiment_id,) = one_row(
            conn.execute(
                "insert into serving.experiments (model_name, champion_version, shadow, "
                "started_by) values (%s, %s, %s, %s) returning experiment_id",
                (model_name, champion, shadow, actor),
            )
        )
        with conn.cursor() as cur:
            cur.executemany(
                "insert into serving.experiment_variants "
                "(experiment_id, variant, model_version, share, low, high) "
                "values (%s, %s, %s, %s, %s, %s)",
                [
                    (experiment_id, v.name, v.model_version, v.share, v.low, v.high)
                    for v in variants
                ],
            )
        audit(
            conn,
            actor,
            "ml.experiment.start",
            model_name,
            {
                "experiment_id": experiment_id,
                "champion": champion,
                "shadow": shadow,
                "variants": [asdict(v) for v in variants],
                "reason": reason,
            },
        )
        return _found(conn, experiment_id)


def end(
    conn: psycopg.Connection,
    model_name: str,
    status: str,
    actor: str,
    reason: str,
    details: dict | None = None,
) -> Experiment:
    """End the running experiment with `status` (stopped, promoted, discarded); audited. The
    API serves the champion alone from its next request."""
    if status not in STATUSES[1:]:
        raise ExperimentError(f"an experiment ends as one of {STATUSES[1:]}, not {status!r}")
    with conn.transaction():
        current = running(conn, model_name)
        if current is None:
            raise ExperimentError(f"no experiment is running on {model_name}")
        conn.execute(
            "update serving.experiments set status = %s, ended_at = now(), ended_by = %s, "
            "end_reason = %s where experiment_id = %s",
            (status, actor, reason, current.experiment_id),
        )
        action = {"stopped": "stop", "promoted": "promote", "discarded": "discard"}[status]
        audit(
            conn,
            actor,
            f"ml.experiment.{action}",
            model_name,
            {"experiment_id": current.experiment_id, "reason": reason, **(details or {})},
        )
        return _found(conn, current.experiment_id)


def running(conn: psycopg.Connection, model_name: str) -> Experiment | None:
    row = conn.execute(
        "select experiment_id from serving.experiments "
        "where model_name = %s and status = 'running'",
        (model_name,),
    ).fetchone()
    return None if row is None else find(conn, row[0])


def latest(conn: psycopg.Connection, model_name: str) -> Experiment | None:
    """The running experiment, else the one that started last."""
    row = conn.execute(
        "select experiment_id from serving.experiments where model_name = %s "
        "order by (status = 'running') desc, experiment_id desc limit 1",
        (model_name,),
    ).fetchone()
    return None if row is None else find(conn, row[0])


def find(conn: psycopg.Connection, experiment_id: int) -> Experiment | None:
    row = conn.execute(
        "select experiment_id, model_name, champion_version, shadow, status, started_at, "
        "started_by, ended_at, ended_by, end_reason from serving.experiments "
        "where experiment_id = %s",
        (experiment_id,),
    ).fetchone()
    if row is None:
        return None
    variants = conn.execute(
        "select variant, model_version, share, low, high from serving.experiment_variants "
        "where experiment_id = %s order by low, variant",
        (experiment_id,),
    ).fetchall()
    (eid, name, champion, shadow, status, started_at, started_by, ended_at, ended_by, why) = row
    return Experiment(
        eid,
        name,
        champion,
        shadow,
        status,
        started_at,
        started_by,
        ended_at,
        ended_by,
        why,
        tuple(Variant(*v) for v in variants),
    )


def _found(conn: psycopg.Connection, experiment_id: int) -> Experiment:
    experiment = find(conn, experiment_id)
    if experiment is None:  # only a concurrent delete of the table's rows could do this
        raise ExperimentError(f"experiment {experiment_id} is gone")
    return experiment


def running_versions(conn: psycopg.Connection, model_name: str) -> set[str]:
    """The versions a running experiment serves or shadows: their scores must stay."""
    rows = conn.execute(
        "select v.model_version from serving.experiment_variants v "
        "join serving.experiments e using (experiment_id) "
        "where e.model_name = %s and e.status = 'running'",
        (model_name,),
    ).fetchall()
    return {r[0] for r in rows}
