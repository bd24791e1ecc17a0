"""What the ML assets show in the Dagster UI: metric tables, gate decisions, model cards,
experiment readouts and the online evidence a card records.

Pure functions of plain values (no Dagster, no MLflow), unit-tested in tests/unit/test_ml_assets.py.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

ROLES = ("challenger", "champion", "baseline")
ROOT = Path(__file__).resolve().parents[3]


def git_commit(cwd: Path = ROOT) -> str | None:
    """The checked-out commit, for the MLflow run; None outside a git checkout (an image)."""
    try:
        # git from PATH, as the developer who checked the code out runs it.
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def metrics_markdown(results: dict, columns: list[str]) -> str:
    """A markdown table: one row per role present (challenger, champion, baseline)."""
    header = "| role | version | " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    for role in ROLES:
        if role in results:
            entry = results[role]
            cells = " | ".join(_fmt(entry["metrics"].get(c)) for c in columns)
            lines.append(f"| {role} | {entry['version']} | {cells} |")
    return "\n".join(lines)


# Recorded beside the gate's metric when the evaluation measured them (the session replay).
BESIDE = ("session_hr_at_10",)


def gate_summary(passed: bool, reason: str, metric: str, margin: float, results: dict) -> dict:
    """The gate decision as flat, JSON-friendly values (asset metadata, audit details): the
    gate's metric per role, and the figures recorded beside it (BESIDE) where measured."""
    return {
        "passed": passed,
        "reason": reason,
        "metric": metric,
        "margin": margin,
        **{
            f"{role}_{name}": results[role]["metrics"].get(name)
            for name in (metric, *BESIDE)
            for role in ROLES
            if role in results and (name == metric or name in results[role]["metrics"])
        },
    }


def model_card(
    model_name: str,
    version: str,
    params: dict,
    window: dict,
    results: dict,
    metric: str,
    columns: list[str],
    passed: bool,
    reason: str,
    champion_after: str | None,
    online_evidence: dict | None = None,
) -> str:
    """A short markdown model card: what was trained on what, how it did, what was decided;
    and, for a version an online experiment judged, that evidence
    (pulsemart.ml_store.experiment_readout.online_evidence)."""
    outcome = "promoted to champion" if passed else "not promoted"
    online = ["", online_evidence_markdown(online_evidence)] if online_evidence else []
    return "\n".join(
        [
            f"### {model_name} version {version}",
            "",
            f"**Gate on `{metric}`: {outcome}.** {reason}.",
            f"Champion now: {champion_after or 'none'}.",
            "",
            f"**Data window**: train {window.get('start')} .. {window.get('cutoff')}, "
            + f"holdout to {window.get('end')}.",
            "",
            "**Parameters**: `" + json.dumps(params, sort_keys=True, default=str) + "`",
            "",
            "**Holdout metrics** (same holdout for every row):",
            "",
            metrics_markdown(results, columns),
            *_session_note(results),
            *online,
        ]
    )


def online_evidence_markdown(evidence: dict) -> str:
    """The online experiment's verdict on a version and each metric's lift over the champion."""
    verdict = "passed" if evidence["passed"] else "not passed"
    on = f" on `{evidence['metric']}`" if evidence.get("metric") else ""
    exposures = ", ".join(f"{arm} {n}" for arm, n in evidence["exposures"].items())
    return "\n".join(
        [
            (
                f"**Online evidence**: experiment {evidence['experiment_id']}, "
                f"{evidence['variant']} (version {evidence['model_version']}); exposures {exposures}."
            ),
            f"Online gate{on} {verdict}: {evidence['reason']}.",
            "",
            lifts_markdown({evidence["variant"]: evidence["lifts"]}, evidence["alpha"]),
        ]
    )


def readout_markdown(readout: dict) -> str:
    """An experiment's readout (experiment_readout.Readout.as_dict): each arm with its rates
    and their intervals, each challenger's lift over the champion, and the sample ratio."""
    level = f"{1 - readout['alpha']:.0%}"
    lines = [
        (
            f"| arm | version | share | exposures | clicks | CTR [{level}] | purchases "
            f"| conversion [{level}] | revenue / exposure [{level}] |"
        ),
        "|" + "---|" * 9,
    ]
    for arm in readout["arms"]:
        share = "n/a" if arm["share"] is None else f"{arm['share']:.0%}"
        lines.append(
            f"| {arm['variant']} | {arm['model_version'] or 'n/a'} | {share} "
            f"| {arm['exposures']} | {arm['clicks']} | {_interval(arm['ctr'])} "
            f"| {arm['purchases']} | {_interval(arm['conversion'])} "
            f"| {_interval(arm['revenue_per_exposure'])} |"
        )
    srm = readout["sample_ratio"]
    verdict = "mismatch" if srm["mismatch"] else "as configured"
    lines += [
        "",
        (
            f"Sample ratio: chi-square {_fmt(srm['chi_square'])}, p {_p(srm['p_value'])} "
            f"({verdict}; a mismatch is p < {srm['alpha']:g})."
        ),
    ]
    if readout["comparisons"]:
        lines += ["", lifts_markdown(readout["comparisons"], readout["alpha"])]
    return "\n".join(lines + [f"\n_{note}_" for note in readout.get("notes", [])])


def lifts_markdown(comparisons: dict, alpha: float) -> str:
    """Each challenger minus the champion, per metric: {variant: {metric: comparison}}."""
    lines = [
        f"| challenger | metric | lift | {1 - alpha:.0%} interval | relative | p |",
        "|---|---|---|---|---|---|",
    ]
    for variant, metrics in comparisons.items():
        for metric, c in metrics.items():
            relative = "n/a" if c["relative_lift"] is None else f"{c['relative_lift']:+.1%}"
            lines.append(
                f"| {variant} | {metric} | {_signed(c['estimate'])} "
                f"| [{_signed(c['low'])}, {_signed(c['high'])}] | {relative} "
                f"| {_p(c['p_value'])} |"
            )
    return "\n".join(lines)


def _interval(interval: dict) -> str:
    if interval["estimate"] is None:
        return "n/a"
    return f"{interval['estimate']:.4f} [{interval['low']:.4f}, {interval['high']:.4f}]"


def _p(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def _session_note(results: dict) -> list[str]:
    """What the session columns mean, when the evaluation replayed sessions."""
    steps = next(
        (
            r["metrics"]["session_steps"]
            for r in results.values()
            if "session_steps" in r["metrics"]
        ),
        None,
    )
    if steps is None:
        return []
    return [
        "",
        (
            f"**Session replay** ({int(steps)} steps: the holdout's invoices revealed item by "
            "item, docs/ml.md): `session_hr_at_10` is what the role serves in a session (a "
            "model: the blend of its scores, neighbours and trending; the baseline: the "
            "popularity list), `session_batch_hr_at_10` the same model's stored list alone."
        ),
    ]


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
