"""`pulsemart model status|promote|rollback|evaluate`: the model registry from a terminal.

Promotion and rollback go through the one lifecycle the ML assets use
(pulsemart.ml_store.lifecycle): the version's recommendations are written first (kept ones are
reused, so a rollback is instant), then the registry's champion alias moves, then the API is
switched to it, audited in governance.audit_log.
"""

from __future__ import annotations

import click

from ml.names import MODELS, RECOMMENDER  # imports nothing: MLflow loads in the commands only
from pulsemart.config import load_settings
from pulsemart.local.processes import ServiceError
from pulsemart.store.db import DatabaseError, connect_migrated

name_option = click.option(
    "--name",
    type=click.Choice(MODELS),
    default=RECOMMENDER,
    show_default=True,
    help="The registered model.",
)


reason_option = click.option(
    "--reason", default="manual", show_default=True, help="Recorded in the audit log."
)


def _mlflow():
    from pulsemart.ml_store import configure_mlflow

    settings = load_settings()
    configure_mlflow(settings)
    return settings


def _connect(settings):
    try:
        return connect_migrated(settings)
    except (DatabaseError, ServiceError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("model")
def model() -> None:
    """Inspect, promote and roll back the registered models; evaluate on a transaction file."""


@model.command("status")
@name_option
def status(name: str) -> None:
    """Champion, challenger, what the API serves, every version and the lifecycle history."""
    from pulsemart.ml_store.lifecycle import LifecycleError, model_status, serving_status

    settings = _mlflow()
    try:
        info = model_status(name)
    except LifecycleError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with connect_migrated(settings) as conn:
            served = serving_status(conn, name)
    except (DatabaseError, ServiceError):
        served = {"deployed": "unknown (database unavailable)", "history": None}
    metric = "ndcg_at_10" if name == RECOMMENDER else "roc_auc"
    click.echo(
        f"{name}: champion {info['champion'] or 'none'}, challenger "
        f"{info['challenger'] or 'none'}, deployed {served['deployed'] or 'none'}"
    )
    click.echo(
        f"a rollback restores: {info['previous_champion'] or 'nothing (no earlier champion)'}"
    )
    click.echo(f"\n  {'version':>7}  {'aliases':<20} {'created':<26} {metric:>10}  gate")
    for v in info["versions"]:
        value = v["metrics"].get(metric)
        shown = f"{value:>10.4f}" if value is not None else f"{'n/a':>10}"
        click.echo(
            f"  {v['version']:>7}  {','.join(v['aliases']) or '-':<20} {v['created']:<26} "
            f"{shown}  {v['tags'].get('pulsemart.gate', '')}"
        )
    click.echo("\nhistory (governance.audit_log, newest first):")
    if served["history"] is None:
        click.echo("  unknown (database unavailable)")
    for at, actor, action, subject, details in served["history"] or []:
        change = (
            f" {details.get('from') or 'none'} -> {details['to']}"
            if "to" in details
            else f" {'passed' if details.get('passed') else 'rejected'}"
            if "passed" in details
            else ""
        )
        click.echo(
            f"  {at:%Y-%m-%d %H:%M:%S}  {action:<12} {subject}{change}  "
            f"{details.get('reason', '')}  ({actor})"
        )
    if served["history"] == []:
        click.echo("  (none yet)")


@model.command("promote")
@click.argument("version")
@name_option
@reason_option
def promote(version: str, name: str, reason: str) -> None:
    """Make VERSION the champion and serve it (scores it first if it was never scored)."""
    from pulsemart.ml_store.lifecycle import LifecycleError, promote_version

    settings = _mlflow()
    with _connect(settings) as conn:
        try:
            info = promote_version(conn, name, version, "pulsemart model promote", reason)
        except LifecycleError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{name}: version {info['champion']} is the champion and is served from the next request"
    )


@model.command("rollback")
@name_option
@reason_option
def rollback(name: str, reason: str) -> None:
    """Restore the champion before the current one and serve it again."""
    from pulsemart.ml_store.lifecycle import LifecycleError, rollback_version

    settings = _mlflow()
    with _connect(settings) as conn:
        try:
            info = rollback_version(conn, name, "pulsemart model rollback", reason)
        except LifecycleError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{name}: rolled back to version {info['champion']}; it is served from the next request"
    )


@model.command("evaluate")
@click.option(
    "--data",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="An Online Retail transaction file (CSV, xlsx or Parquet).",
)
@name_option
@click.option(
    "--sessions",
    is_flag=True,
    help="Replay the test period's invoices item by item instead: batch_only, session_aware "
    "(the blend the API serves) and popularity, HR@10 and NDCG@10 (docs/ml.md).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="With --sessions: print one JSON object instead."
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    help="With --sessions: replay about this many steps, whole invoices picked by a hash of "
    "their number (default: every step).",
)
def evaluate(path: str, name: str, sessions: bool, as_json: bool, max_steps: int | None) -> None:
    """Popularity, the default recommender and propensity on a 75/25 time split of PATH; and
    the registry's champion on the same split, when there is one. With --sessions, the session
    replay on that split (no registry or database needed)."""
    if (as_json or max_steps) and not sessions:
        raise click.UsageError("--json and --max-steps go with --sessions")
    if sessions:
        _evaluate_sessions(path, as_json, max_steps)
        return
    from ml.evaluate import format_report
    from pulsemart.ml_store.offline import champion_report
    from pulsemart.ml_store.retail import evaluate_file

    try:
        result = evaluate_file(path)
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    click.echo(format_report(result))
    settings = _mlflow()
    click.echo("\n" + champion_report(settings, name, path))


def _evaluate_sessions(path: str, as_json: bool, max_steps: int | None) -> None:
    import dataclasses
    import json

    from ml.blend import BlendWeights
    from ml.session_replay import K, format_rows, session_replay
    from pulsemart.ml_store.retail import load_interactions

    def progress(done: int, total: int) -> None:
        click.echo(f"session replay: {done}/{total} steps", err=True)

    click.echo(f"session replay: loading {path}, fitting the default recommender", err=True)
    weights = BlendWeights()
    try:
        rows = session_replay(load_interactions(path), weights, max_steps, progress)
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    if as_json:
        document = {
            "data": path,
            "k": K,
            "weights": dataclasses.asdict(weights),
            "recommenders": rows,
        }
        click.echo(json.dumps(document))
        return
    click.echo(f"session replay of {path} (test period of a 75/25 time split, k = {K})")
    click.echo(format_rows(rows))
