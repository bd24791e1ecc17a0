"""Every page the API serves renders with the network off: Swagger UI at /docs, ReDoc at /redoc
and the dbt docs site at /datamart/docs/, each in headless Chromium whose only way out is a proxy
that answers nothing and records every request that tried to leave 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socketserver
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import dbt.task.docs
import pytest
import uvicorn

from pulsemart.config import load_settings
from pulsemart.datamart.docs import DOCS_FILES, docs_dir, publish_site
from pulsemart.datamart.project import DBT_PROJECT_DIR
from pulsemart.serving.api import create_app
from pulsemart.store.db import database_url
from tests.integration.helpers import free_port
from tests.integration.test_dashboard import CHROMIUM_FLAGS, DomParser, Node, browser

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["browser"]  # the Chromium fixture, shared with the dashboard's test
# Chromium's own services (time, autofill, component and account checks), which the dashboard's flags do
# not all silence, sent to a closed local port: whatever the proxy records came from the page.
QUIET_BROWSER = [
    "--disable-features=NetworkTimeServiceQuerying,AutofillServerCommunication",
    "--component-updater=url-source=http://127.0.0.1:9/",
    "--gaia-url=http://127.0.0.1:9/",
]
ROUTES = ("/products/search", "/customers/{customer_id}/recommendations", "/metrics/realtime")


class RecordingProxy(socketserver.ThreadingTCPServer):
    """Chromium's proxy: it sends every request for another host here (loopback bypasses a
    proxy), and here each is written down and refused."""

    daemon_threads = True

    def __init__(self):
        self.attempts: list[str] = []
        super().__init__(("127.0.0.1", 0), self.Refuse)

    class Refuse(socketserver.StreamRequestHandler):
        def handle(self):
            self.server.attempts.append(self.rfile.readline(4096).decode(errors="replace").strip())
            self.wfile.write(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )


@pytest.fixture(scope="module")
def outside():
    proxy = RecordingProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def render_offline(browser: str, proxy: RecordingProxy, url: str) -> Node:
    """The DOM `url` renders to, with names resolving to nothing and every request for another
    host sent to `proxy`."""
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    offline = [
        *QUIET_BROWSER,
        f"--proxy-server={proxy_url}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]
    profile = tempfile.mkdtemp(prefix="pulsemart-chromium-")
    try:
        result = subprocess.run(
            [browser, *CHROMIUM_FLAGS, *offline, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert result.returncode == 0 and "<body" in result.stdout, result.stderr[-2000:]
    parser = DomParser()
    parser.feed(result.stdout)
    return parser.root


def classes(node: Node) -> set[str]:
    return set(node.attrs.get("class", "").split())


@pytest.fixture(scope="module")
def server(settings, tmp_path_factory):
    """The serving API under uvicorn, with a home of its own for the dbt docs site."""
    own = load_settings(
        {
            "PULSEMART_HOME": str(tmp_path_factory.mktemp("docs-home")),
            "PULSEMART_DATABASE_URL": database_url(settings),
            "PULSEMART_API_KEY": "k",
        }
    )
    app = create_app(own)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", own
    server.should_exit = True
    thread.join(10)


def test_swagger_ui_renders_every_route_without_the_network(server, browser, outside):
    base, _ = server
    outside.attempts.clear()
    dom = render_offline(browser, outside, f"{base}/docs")
    assert outside.attempts == [], f"requests left 127.0.0.1: {outside.attempts}"
    assert any("swagger-ui" in classes(n) for n in dom.walk()), "Swagger UI did not start"
    paths = {n.attrs["data-path"] for n in dom.walk() if "opblock-summary-path" in classes(n)}
    assert set(ROUTES) <= paths, paths


def test_redoc_renders_every_route_without_the_network(server, browser, outside):
    base, _ = server
    outside.attempts.clear()
    dom = render_offline(browser, outside, f"{base}/redoc")
    assert outside.attempts == [], f"requests left 127.0.0.1: {outside.attempts}"
    [title] = [n for n in dom.walk() if n.tag == "h1"]
    assert "pulsemart serving API" in title.text
    assert all(route in dom.text for route in ROUTES), "ReDoc did not render the operations"


def test_the_dbt_docs_site_stays_on_its_origin_even_with_tracking_on(
    server, browser, outside, tmp_path
):
    """dbt's page loads dbt Labs' usage tracker from a CDN when the manifest allows it; the
    published site must not reach out even then. The page is the one `dbt docs generate`
    copies into the target folder; the manifest is the project's own."""
    base, own = server
    shutil.copy2(Path(dbt.task.docs.__file__).with_name("index.html"), tmp_path / "index.html")
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    manifest["metadata"]["send_anonymous_usage_stats"] = True
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "catalog.json").write_text(
        json.dumps({"metadata": manifest["metadata"], "nodes": {}, "sources": {}, "errors": None})
    )
    assert {p.name for p in tmp_path.iterdir()} == set(DOCS_FILES)
    publish_site(tmp_path, docs_dir(own))
    outside.attempts.clear()
    dom = render_offline(browser, outside, f"{base}/datamart/docs/")
    assert outside.attempts == [], f"requests left 127.0.0.1: {outside.attempts}"
    assert "fct_order_lines" in dom.text, "the dbt docs app did not render the project"
