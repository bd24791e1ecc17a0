"""From findings and contract failures to one decision per record, with its score, confidence
and the reasons a steward reads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pulsemart.quality.rules import RuleSet

ACCEPTED, FIXED, QUARANTINED, HELD = "accepted", "fixed", "quarantined", "held"


def decide(
    rows: pd.Index,
    findings: pd.DataFrame,
    failures: pd.DataFrame,
    first_held: pd.Series,
    now: pd.Timestamp,
    rules: RuleSet,
) -> pd.DataFrame:
    """One row per event row: decision, score, confidence, reasons (list of codes)."""
    errors = findings[findings["severity"] == "error"]
    # A rule counts once per record however many lines or fields it fired on.
    per_rule = errors.drop_duplicates(["row", "rule_id"])
    weight = per_rule.groupby("row")["weight"].sum().reindex(rows, fill_value=0.0)
    score = (1.0 - weight).clip(0.0, 1.0)
    conf = errors.loc[errors["repaired"].astype(bool)].copy()
    conf["log"] = np.log(conf["confidence"].astype(float).clip(lower=1e-9))
    confidence = np.exp(conf.groupby("row")["log"].sum()).reindex(rows, fill_value=1.0)
    unrepaired = errors[~errors["repaired"].astype(bool)]
    holds = unrepaired[unrepaired["hold"].astype(bool)]
    hard = unrepaired[~unrepaired["hold"].astype(bool)]
    reasons: dict[int, list[str]] = {row: [] for row in rows}
    for row, rule_id in zip(hard["row"], hard["rule_id"], strict=True):
        _add(reasons[row], rule_id)
    for row, schema, column, check in zip(
        failures["row"], failures["schema"], failures["column"], failures["check"], strict=True
    ):
        _add(reasons[row], f"contract:{schema}:{column}:{check}")
    held_rules = holds.groupby("row")["rule_id"].agg(list).to_dict()
    repaired_rows = set(errors.loc[errors["repaired"].astype(bool), "row"])
    timeout = pd.Timedelta(seconds=rules.settings.hold_timeout_seconds)
    t = rules.thresholds
    decisions = []
    for row in rows:
        if reasons[row]:
            decisions.append(QUARANTINED)
        elif row in held_rules:
            since = first_held.get(row)
            if since is not None and pd.notna(since) and now - since > timeout:
                reasons[row].append("unknown_product_timeout")
                decisions.append(QUARANTINED)
            else:
                for rule_id in held_rules[row]:
                    _add(reasons[row], rule_id)
                decisions.append(HELD)
        elif row in repaired_rows:
            if confidence[row] < t.fix_confidence:
                reasons[row].append("low_confidence")
            if score[row] < t.min_score:
                reasons[row].append("low_score")
            decisions.append(QUARANTINED if reasons[row] else FIXED)
        else:
            decisions.append(ACCEPTED)
    return pd.DataFrame(
        {
            "decision": decisions,
            "score": score.to_numpy(),
            "confidence": confidence.to_numpy(),
            "reasons": [reasons[row] for row in rows],
        },
        index=rows,
    )


def _add(items: list, item: str) -> None:
    if item not in items:
        items.append(item)
