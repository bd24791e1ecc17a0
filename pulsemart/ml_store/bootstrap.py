"""The first datamart build and the first model, on their own, once there is data enough.

A fresh deployment (or `pulsemart up` on a new home) has a stream but no datamart and no
model: the datamart's automation waits for its cron tick and updated parents, and the weekly
retrain for Monday. The bootstrap sensor asks for each once, in order:

    datamart   when the clean layer holds `min_clean_events` and no mart exists yet
    model      when the mart holds `min_purchases` purchases and no recommender was ever
               evaluated: the `ml_train` job (train, evaluate and gate both models, score)

`next_step` is the pure decision (unit-tested); `read_state` the bounded reads behind it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ml.names import RECOMMENDER
from pulsemart.store.rows import one_row

DATAMART, MODEL = "datamart", "model"
STEPS = (DATAMART, MODEL)


@dataclass(frozen=True)
class BootstrapThresholds:
    # About 100 s of the default trickle: enough for every mart to have rows.
    min_clean_events: int = 500
    # Purchases are ~2% of the trickle; the first mart of the demo holds 25-40. Enough for the
    # holdout to have buyers the training part has seen.
    min_purchases: int = 20


@dataclass(frozen=True)
class BootstrapState:
    clean_events: int  # counted up to the threshold only
    purchases: int  # purchases in marts.fct_product_interactions, up to the threshold
    mart_built: bool
    model_evaluated: bool
    # A dbt build in flight: the mart's table may exist before the models it joins are built.
    datamart_building: bool = False


@dataclass(frozen=True)
class BootstrapDecision:
    step: str | None  # DATAMART, MODEL, or None: nothing to request now
    reason: str


def next_step(
    state: BootstrapState,
    requested: frozenset[str] | set[str],
    thresholds: BootstrapThresholds = BootstrapThresholds(),
) -> BootstrapDecision:
    """What to request now, given the store and the steps already requested (never twice)."""
    unknown = set(requested) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown bootstrap step(s) {sorted(unknown)}; expected {STEPS}")
    if state.model_evaluated:
        return BootstrapDecision(None, "done: a recommender has been evaluated")
    if not state.mart_built:
        if DATAMART in requested:
            return BootstrapDecision(
                None,
                "the first datamart build was requested; waiting for "
                "the mart (if that run failed, run datamart_build)",
            )
        if state.clean_events < thresholds.min_clean_events:
            return BootstrapDecision(
                None,
                f"{state.clean_events} clean events; the first datamart "
                f"build waits for {thresholds.min_clean_events}",
            )
        return BootstrapDecision(DATAMART, f"{state.clean_events} clean events and no datamart yet")
    if MODEL in requested:
        return BootstrapDecision(
            None,
            "the first training run was requested; waiting for its "
            "evaluation (if that run failed, run ml_train)",
        )
    if state.datamart_building:
        return BootstrapDecision(
            None, "a datamart build is in flight; the first training waits for it to finish"
        )
    if state.purchases < thresholds.min_purchases:
        return BootstrapDecision(
            None,
            f"{state.purchases} purchases in the mart; the first "
            f"training waits for {thresholds.min_purchases}",
        )
    return BootstrapDecision(MODEL, f"{state.purchases} purchases in the mart and no model yet")


# Counts stop at the threshold: the sensor never scans a large table.
CLEAN_EVENTS = "select count(*) from (select 1 from quality.events_clean limit %s) e"
PURCHASES = (
    "select count(*) from (select 1 from marts.fct_product_interactions "
    "where interaction = 'purchase' limit %s) p"
)
MART_BUILT = "select to_regclass('marts.fct_product_interactions') is not null"
EVALUATED = (
    "select exists (select 1 from governance.model_evaluations where model_name = %s "
    "and role = 'challenger')"
)


def read_state(
    conn: psycopg.Connection, thresholds: BootstrapThresholds, datamart_building: bool = False
) -> BootstrapState:
    """The store's answer to each question `next_step` asks (a read-only transaction);
    `datamart_building` comes from the orchestrator."""
    with conn.transaction():
        model_evaluated = one_row(conn.execute(EVALUATED, (RECOMMENDER,)))[0]
        mart_built = one_row(conn.execute(MART_BUILT))[0]
        clean = (
            0
            if mart_built
            else one_row(conn.execute(CLEAN_EVENTS, (thresholds.min_clean_events,)))[0]
        )
        purchases = (
            one_row(conn.execute(PURCHASES, (thresholds.min_purchases,)))[0] if mart_built else 0
        )
    return BootstrapState(clean, purchases, mart_built, model_evaluated, datamart_building)
