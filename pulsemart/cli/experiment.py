"""`pulsemart model experiment start|status|stop|conclude`: online experiments from a terminal.

The API follows serving.experiments on its next request (within the response cache's 0.25 s
bound); every command is audited in governance.audit_log like promotion and rollback
(pulsemart.ml_store.experiments). `conclude promote` passes the online gate first: the
challenger's lift on PULSEMART_EXPERIMENT_METRIC must be significant in the readout
(pulsemart.ml_store.experiment_readout), unless PULSEMART_EXPERIMENT_REQUIRE_EVIDENCE is off
or `--without-evidence` says so (audited as such).
"""

from __future__ import annotations

import json

import click

from ml.names import RECOMMENDER
from pulsemart.cli.model import _connect, _mlflow, reason_option
from pulsemart.config import load_settings

ACTOR = "pulsemart model experiment"
name_argument = click.argument("name", type=click.Choice((RECOMMENDER,)), metavar="NAME")


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("experiment")
def experiment() -> None:
    """Serve a challenger to a share of the shoppers (or in its shadow), read it, conclude."""


@experiment.command("start")
@name_argument
@click.option(
    "--challenger",
    "challengers",
    multiple=True,
    required=True,
    help="A scored version of the model, or `popularity` (trending only). Repeat with "
    "--share for several challengers.",
)
@click.option(
    "--share",
    "shares",
    multiple=True,
    type=float,
    help="Each challenger's share of the shoppers, in (0, 1]; the champion serves the rest. "
    "[default: 0.1]",
)
@click.option(
    "--shadow",
    is_flag=True,
    help="Score and log the challenger for its share of the shoppers; never show it.",
)
@reason_option
def start(
    name: str, challengers: tuple[str, ...], shares: tuple[float, ...], shadow: bool, reason: str
) -> None:
    """Start an experiment on NAME (one at a time per model)."""
    from pulsemart.ml_store.experiments import ExperimentError
    from pulsemart.ml_store.experiments import start as start_experiment

    if not shares:
        shares = (0.1,) * len(challengers)
    if len(shares) != len(challengers):
        raise click.UsageError(
            f"{len(challengers)} --challenger but {len(shares)} --share: give one share each"
        )
    with _connect(load_settings()) as conn:
        try:
            started = start_experiment(
                conn, name, list(zip(challengers, shares, strict=True)), ACTOR, shadow, reason
            )
        except ExperimentError as exc:
            raise _fail(exc) from exc
    arms = ", ".join(f"{v.name} {v.model_version} {v.share:.0%}" for v in started.variants)
    kind = "shadow experiment" if shadow else "experiment"
    click.echo(
        f"{name}: {kind} {started.experiment_id} started (champion "
        f"{started.champion_version or 'none'}; {arms}); the API follows from its next request"
    )


@experiment.command("status")
@name_argument
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(name: str, as_json: bool) -> None:
    """The running experiment (else the latest), its arms and its latest readout."""
    from pulsemart.ml_store.experiment_readout import latest_readout
    from pulsemart.ml_store.experiments import latest

    with _connect(load_settings()) as conn:
        current = latest(conn, name)
        readout = latest_readout(conn, current.experiment_id) if current else None
    if as_json:
        document = {
            "model_name": name,
            "experiment": current.as_dict() if current else None,
            "readout": readout,
        }
        click.echo(json.dumps(document, default=str))
        return
    if current is None:
        click.echo(f"{name}: no experiment yet")
        return
    click.echo(
        f"{name}: experiment {current.experiment_id} {current.status}"
        f"{' (shadow)' if current.shadow else ''}, started {current.started_at:%Y-%m-%d %H:%M:%S}"
        f" by {current.started_by}; champion {current.champion_version or 'none'}"
    )
    for arm, share in current.shares.items():
        version = next((v.model_version for v in current.variants if v.name == arm), None)
        click.echo(f"  {arm:<14} {version or current.champion_version or '-':<12} {share:.0%}")
    if current.shadow:
        click.echo(f"  shadow         {current.variants[0].model_version:<12} scored, never shown")
    if current.ended_at:
        click.echo(
            f"ended {current.ended_at:%Y-%m-%d %H:%M:%S} by {current.ended_by}: "
            f"{current.end_reason}"
        )
    if readout is None:
        click.echo("readout: none yet (materialize ml/experiment_readout after a datamart build)")
    else:
        click.echo("readout (latest): " + json.dumps(readout, default=str))


@experiment.command("stop")
@name_argument
@reason_option
def stop(name: str, reason: str) -> None:
    """Stop the running experiment: the champion serves everyone again."""
    from pulsemart.ml_store.experiments import ExperimentError, end

    with _connect(load_settings()) as conn:
        try:
            ended = end(conn, name, "stopped", ACTOR, reason)
        except ExperimentError as exc:
            raise _fail(exc) from exc
    click.echo(f"{name}: experiment {ended.experiment_id} stopped; the champion serves everyone")


@experiment.command("conclude")
@name_argument
@click.argument("decision", type=click.Choice(("promote", "discard")))
@click.option(
    "--variant",
    default=None,
    help="With promote and several challengers: the one to promote (e.g. challenger_2).",
)
@click.option(
    "--without-evidence",
    is_flag=True,
    help="Promote without the online gate (audited as such).",
)
@reason_option
def conclude(
    name: str, decision: str, variant: str | None, without_evidence: bool, reason: str
) -> None:
    """End the running experiment: promote its challenger (gated on the readout) or discard it."""
    from pulsemart.ml_store.experiments import ExperimentError, end, running

    if decision == "discard":
        with _connect(load_settings()) as conn:
            try:
                ended = end(conn, name, "discarded", ACTOR, reason)
            except ExperimentError as exc:
                raise _fail(exc) from exc
        click.echo(f"{name}: experiment {ended.experiment_id} discarded; the champion stays")
        return
    settings = _mlflow()
    with _connect(settings) as conn:
        current = running(conn, name)
        if current is None:
            raise click.ClickException(f"no experiment is running on {name}")
        chosen = _chosen_variant(current, variant)
        evidence = _online_evidence(conn, settings, current, chosen, without_evidence)
        _promote(conn, name, chosen.model_version, reason)
        ended = end(conn, name, "promoted", ACTOR, reason, {"promoted": chosen.model_version})
    click.echo(
        f"{name}: experiment {ended.experiment_id} concluded; version {chosen.model_version} "
        f"is the champion ({evidence})"
    )


def _chosen_variant(current, variant: str | None):
    from pulsemart.ml_store.experiments import POPULARITY

    candidates = [v for v in current.variants if variant in (None, v.name)]
    if not candidates:
        names = ", ".join(v.name for v in current.variants)
        raise click.ClickException(f"experiment has no variant {variant!r}; variants: {names}")
    if len(candidates) > 1:
        names = ", ".join(v.name for v in candidates)
        raise click.UsageError(f"several challengers ({names}): name one with --variant")
    chosen = candidates[0]
    if chosen.model_version == POPULARITY:
        raise click.ClickException(
            f"{POPULARITY!r} is a baseline, not a model version: conclude with discard"
        )
    return chosen


def _gate_on_record(conn, current, chosen, passed: bool, reason: str) -> None:
    """Audit the online gate's verdict, committed: it stays even when it refuses."""
    from pulsemart.ml_store.records import audit

    with conn.transaction():
        audit(
            conn,
            ACTOR,
            "ml.experiment.gate",
            f"{current.model_name}/{chosen.model_version}",
            {"experiment_id": current.experiment_id, "passed": passed, "reason": reason},
        )
    conn.commit()


def _online_evidence(conn, settings, current, chosen, without_evidence: bool) -> str:
    """The online gate's verdict, recorded on the model version; refuses a failed gate."""
    from pulsemart.ml_store.experiment_readout import compute_readout
    from pulsemart.ml_store.online_gate import online_gate, record_online_evidence

    if without_evidence or not settings.experiment_require_evidence:
        why = "--without-evidence" if without_evidence else "PULSEMART_EXPERIMENT_REQUIRE_EVIDENCE"
        _gate_on_record(conn, current, chosen, True, f"skipped: {why}")
        return f"online gate skipped: {why}"
    readout = compute_readout(conn, current)
    decision = online_gate(
        readout,
        chosen.name,
        settings.experiment_metric,
        settings.experiment_alpha,
        settings.experiment_min_exposures,
    )
    _gate_on_record(conn, current, chosen, decision.passed, decision.reason)
    if not decision.passed:
        raise click.ClickException(
            f"online gate: {decision.reason}. Keep the experiment running, conclude with "
            "discard, or promote --without-evidence"
        )
    record_online_evidence(
        current.model_name, chosen.model_version, decision, readout, settings.experiment_metric
    )
    return f"online gate: {decision.reason}"


def _promote(conn, name: str, version: str, reason: str) -> None:
    from pulsemart.ml_store.lifecycle import LifecycleError, promote_version

    try:
        promote_version(conn, name, version, ACTOR, f"experiment: {reason}")
    except LifecycleError as exc:
        raise _fail(exc) from exc
