"""`pulsemart model status|promote|rollback|evaluate`: the model registry from a terminal.

Promotion and rollback do what the ML assets do (pulsemart.ml_store.lifecycle): the version's
recommendations are written first (kept ones are reused, so a rollback is instant), then the
registry's champion alias moves, then serving.model_deployments switches the API, audited in
governance.audit_log.
"""

from __future__ import annotations

import click

from pulsemart.config import load_settings
from pulsemart.local.processes import ServiceError
from pulsemart.store.db import DatabaseError, connect_migrated

# ml.registry.RECOMMENDER and PROPENSITY, spelt out: `ml` (and MLflow behind it) is imported only
# by the model commands, so every other command starts as fast as before.
RECOMMENDER, PROPENSITY = "pulsemart-recommender", "pulsemart-propensity"
name_option = click.option("--name", type=click.Choice((RECOMMENDER, PROPENSITY)), default=RECOMMENDER,
                           show_default=True, help="The registered model.")


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
    """Champion, challenger, what the API serves, every version and the promotion history."""
    from pulsemart.ml_store.lifecycle import LifecycleError, model_status
    from pulsemart.ml_store.scoring import deployed_version

    settings = _mlflow()
    try:
        info = model_status(name)
    except LifecycleError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with connect_migrated(settings) as conn:
            deployed = deployed_version(conn, name) or "none"
    except (DatabaseError, ServiceError):
        deployed = "unknown (database unavailable)"
    metric = "ndcg_at_10" if name == RECOMMENDER else "roc_auc"
    click.echo(f"{name}: champion {info['champion'] or 'none'}, challenger "
               f"{info['challenger'] or 'none'}, deployed {deployed}")
    click.echo(f"rollback stack (newest last): {', '.join(info['previous_champions']) or 'empty'}")
    click.echo(f"\n  {'version':>7}  {'aliases':<20} {'created':<26} {metric:>10}  gate")
    for v in info["versions"]:
        value = v["metrics"].get(metric)
        shown = f"{value:>10.4f}" if value is not None else f"{'n/a':>10}"
        click.echo(f"  {v['version']:>7}  {','.join(v['aliases']) or '-':<20} {v['created']:<26} "
                   f"{shown}  {v['tags'].get('pulsemart.gate', '')}")
    click.echo("\nhistory:")
    for entry in info["history"] or [{"action": "(none yet)"}]:
        frm = f" from {entry['from']}" if entry.get("from") else ""
        click.echo(f"  {entry.get('at', ''):<25} {entry['action']:<12} {entry.get('version', '')}"
                   f"{frm}  {entry.get('reason', '')}")


@model.command("promote")
@click.argument("version")
@name_option
@click.option("--reason", default="manual", show_default=True, help="Recorded in the audit log.")
def promote(version: str, name: str, reason: str) -> None:
    """Make VERSION the champion and serve it (scores it first if it was never scored)."""
    from pulsemart.ml_store.lifecycle import LifecycleError, promote_version

    settings = _mlflow()
    with _connect(settings) as conn:
        try:
            info = promote_version(conn, name, version, "pulsemart model promote", reason)
        except LifecycleError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{name}: version {info['champion']} is the champion and is served from the next "
               "request")


@model.command("rollback")
@name_option
@click.option("--reason", default="manual", show_default=True, help="Recorded in the audit log.")
def rollback(name: str, reason: str) -> None:
    """Restore the champion before the current one and serve it again."""
    from pulsemart.ml_store.lifecycle import LifecycleError, rollback_version

    settings = _mlflow()
    with _connect(settings) as conn:
        try:
            info = rollback_version(conn, name, "pulsemart model rollback", reason)
        except LifecycleError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{name}: rolled back to version {info['champion']}; it is served from the next "
               "request")


@model.command("evaluate")
@click.option("--data", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="An Online Retail transaction file (CSV, xlsx or Parquet).")
@name_option
def evaluate(path: str, name: str) -> None:
    """Popularity, the default recommender and propensity on a 75/25 time split of PATH; and
    the registry's champion on the same split, when there is one."""
    from ml.evaluate import evaluate_file, format_report
    from pulsemart.ml_store.offline import champion_report

    try:
        result = evaluate_file(path)
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    click.echo(format_report(result))
    settings = _mlflow()
    click.echo("\n" + champion_report(settings, name, path))
