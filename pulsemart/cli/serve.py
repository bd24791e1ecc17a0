"""`pulsemart serve`: the serving API (search, recommendations, live metrics) under uvicorn."""

from __future__ import annotations

import click

from pulsemart.config import load_settings


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--insecure-no-auth", is_flag=True,
              help="Serve without an API key when PULSEMART_API_KEY is not set (development only).")
def serve(host: str, port: int, insecure_no_auth: bool) -> None:
    """Serve product search, recommendations and live metrics over the serving tables."""
    import uvicorn

    from pulsemart.serving.api import ServingConfigError, create_app

    settings = load_settings()
    try:
        app = create_app(settings, insecure_no_auth=insecure_no_auth)
    except ServingConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.api_key:
        click.echo("warning: serving without authentication (--insecure-no-auth)", err=True)
    click.echo(f"serving API on http://{host}:{port} (OpenAPI docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
