"""The online gate and the guardrail: what an experiment's readout allows.

- `online_gate`: a challenger may be promoted on online evidence only if every arm has its
  minimum of exposures, the sample ratio holds, and its lift on the chosen metric over the
  champion is positive and significant (`pulsemart model experiment conclude promote`);
- `guardrail`: a challenger whose conversion is significantly below the champion's stops the
  experiment (the readout asset's check);
- `record_online_evidence`: the verdict and the figures, written onto the MLflow model version
  (its model card in the registry).
"""

from __future__ import annotations

from ml.experiment_stats import SRM_ALPHA
from pulsemart.ml_store.experiment_readout import CHAMPION, METRICS, Readout
from pulsemart.ml_store.lifecycle import GateDecision


def online_gate(
    readout: Readout, variant: str, metric: str, alpha: float, min_exposures: int
) -> GateDecision:
    """Pass only if every arm has `min_exposures`, the sample ratio holds, and `variant`'s
    lift on `metric` over the champion is positive and significant at `alpha`."""
    if metric not in METRICS:
        raise ValueError(f"unknown online metric {metric!r}; expected one of {METRICS}")
    e = readout.experiment
    if e.shadow:
        return GateDecision(False, f"experiment {e.experiment_id} is a shadow: nothing was shown")
    if readout.arm(variant) is None or variant == CHAMPION:
        return GateDecision(False, f"experiment {e.experiment_id} has no challenger {variant!r}")
    short = [a for a in readout.arms if a.totals.exposures < min_exposures]
    if short:
        counts = ", ".join(f"{a.variant} {a.totals.exposures}" for a in short)
        notes = "".join(f"; {n}" for n in readout.notes)
        return GateDecision(
            False, f"too few exposures ({counts}; each arm needs {min_exposures}){notes}"
        )
    if readout.sample_ratio.mismatch():
        return GateDecision(
            False,
            f"sample ratio mismatch (chi-square p={readout.sample_ratio.p_value:.2g} < "
            f"{SRM_ALPHA:g}): the assignment or the logging is broken, no figure can be trusted",
        )
    comparison = readout.comparisons[variant][metric]
    figures = describe(readout, variant, metric)
    difference = comparison.difference.estimate
    if comparison.p_value is None or difference is None:
        return GateDecision(False, f"{figures}: cannot be compared")
    if difference <= 0 or not comparison.significant(alpha):
        return GateDecision(False, f"{figures}: not a significant gain at alpha {alpha:g}")
    return GateDecision(True, f"{figures}: a significant gain at alpha {alpha:g}")


def guardrail(readout: Readout, alpha: float) -> tuple[bool, str]:
    """(breached, reason): breached when a challenger's conversion is significantly below the
    champion's at `alpha`."""
    if readout.experiment.shadow:
        return False, "a shadow experiment shows shoppers the champion only"
    worse = [
        variant
        for variant, metrics in readout.comparisons.items()
        if (d := metrics["conversion"].difference.estimate) is not None
        and d < 0
        and metrics["conversion"].significant(alpha)
    ]
    if worse:
        figures = "; ".join(describe(readout, v, "conversion") for v in worse)
        return True, f"conversion significantly below the champion's at alpha {alpha:g}: {figures}"
    figures = "; ".join(describe(readout, v, "conversion") for v in readout.comparisons)
    return False, f"no challenger converts significantly worse at alpha {alpha:g}" + (
        f": {figures}" if figures else ""
    )


def describe(readout: Readout, variant: str, metric: str) -> str:
    """`variant` against the champion on `metric`, with the lift's interval and p."""
    arm, champion = readout.arm(variant), readout.arm(CHAMPION)
    if arm is None or champion is None:
        raise ValueError(f"the readout has no arm {variant!r} or no champion")
    c = readout.comparisons[variant][metric]
    d = c.difference
    level = f"{1 - readout.alpha:.0%}"
    relative = f" ({c.relative_lift:+.1%})" if c.relative_lift is not None else ""
    p = "n/a" if c.p_value is None else f"{c.p_value:.3g}"
    return (
        f"{metric} {variant} {_num(getattr(arm, metric).estimate)} vs champion "
        f"{_num(getattr(champion, metric).estimate)}, lift {_num(d.estimate, '+')}{relative}, "
        f"{level} CI [{_num(d.low, '+')}, {_num(d.high, '+')}], p={p}"
    )


def _num(value: float | None, sign: str = "") -> str:
    return "n/a" if value is None else f"{value:{sign}.4f}"


def online_evidence(
    readout: Readout, variant: str, decision: GateDecision, metric: str | None = None
) -> dict:
    """What a model version's record keeps of its experiment: the verdict, the exposures, and
    the lift, interval and p of every metric (`metric`: the one gated on, when known)."""
    document = readout.as_dict()
    arm = next(a for a in document["arms"] if a["variant"] == variant)
    return {
        "experiment_id": readout.experiment.experiment_id,
        "variant": variant,
        "model_version": arm["model_version"],
        "passed": decision.passed,
        "reason": decision.reason,
        "metric": metric,
        "alpha": readout.alpha,
        "exposures": {a["variant"]: a["exposures"] for a in document["arms"]},
        "sample_ratio_p": document["sample_ratio"]["p_value"],
        "lifts": document["comparisons"][variant],
    }


def record_online_evidence(
    model_name: str,
    version: str,
    decision: GateDecision,
    readout: Readout,
    metric: str | None = None,
) -> dict:
    """Write the online gate's verdict and the readout's figures onto the MLflow model version
    (tags and description); returns the evidence written. The version must be a challenger
    the experiment showed."""
    from ml import registry

    variant = next(
        (v.name for v in readout.experiment.variants if v.model_version == str(version)), None
    )
    if variant is None or readout.arm(variant) is None:
        raise ValueError(
            f"version {version} is no challenger of experiment {readout.experiment.experiment_id}"
        )
    evidence = online_evidence(readout, variant, decision, metric)
    exposures = ", ".join(f"{v} {n}" for v, n in evidence["exposures"].items())
    description = (
        f"Online gate {'passed' if decision.passed else 'not passed'} in experiment "
        f"{evidence['experiment_id']} ({variant}; exposures: {exposures}): {decision.reason}."
    )
    registry.tag_online_evidence(
        model_name, str(version), decision.passed, decision.reason, evidence, description
    )
    return evidence
