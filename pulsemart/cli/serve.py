"""`pulsemart serve`: the serving API under uvicorn, one worker process per core by default."""

from __future__ import annotations

import os

import click

from pulsemart.config import load_settings

# uvicorn's worker processes import the app by name and build it from the environment; the
# choices that are command-line flags rather than settings travel to them here.
INSECURE_ENV = "PULSEMART_SERVE_INSECURE_NO_AUTH"
NO_CACHE_ENV = "PULSEMART_SERVE_NO_CACHE"


def default_workers() -> int:
    """One per core this process may run on (its CPU affinity, which containers and taskset
    narrow; os.cpu_count() would count the whole host)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def app_from_environment():
    """The app as a worker process builds it (uvicorn's factory)."""
    from pulsemart.serving.api import create_app
    from pulsemart.serving.cache import ResponseCache

    cache = ResponseCache(max_staleness_s=0) if os.environ.get(NO_CACHE_ENV) == "1" else None
    return create_app(
        load_settings(), insecure_no_auth=os.environ.get(INSECURE_ENV) == "1", cache=cache
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes (default: one per CPU core).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Answer every request from the database (no response cache; for measuring).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve without an API key when PULSEMART_API_KEY is not set (development only).",
)
def serve(
    host: str, port: int, workers: int | None, no_cache: bool, insecure_no_auth: bool
) -> None:
    """Serve product search, recommendations, propensity and live metrics over the serving tables."""
    import uvicorn

    from pulsemart.serving.api import ServingConfigError, create_app

    settings = load_settings()
    try:  # fail here, once, with the reason, rather than in every worker
        create_app(settings, insecure_no_auth=insecure_no_auth)
    except ServingConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.api_key:
        click.echo("warning: serving without authentication (--insecure-no-auth)", err=True)
    os.environ[INSECURE_ENV] = "1" if insecure_no_auth else "0"
    os.environ[NO_CACHE_ENV] = "1" if no_cache else "0"
    workers = workers or default_workers()
    click.echo(
        f"serving API on http://{host}:{port} with {workers} worker(s) (OpenAPI docs at /docs)"
    )
    uvicorn.run(
        "pulsemart.cli.serve:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
