"""What the ML assets show in the Dagster UI: metric tables, gate decisions, model cards.

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
) -> str:
    """A short markdown model card: what was trained on what, how it did, what was decided."""
    outcome = "promoted to champion" if passed else "not promoted"
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
        ]
    )


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
