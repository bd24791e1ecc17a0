"""`pulsemart up`: the UI comes up with the topic assets, and one Ctrl-C stops everything."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.integration.foreign import ROOT, started_in
from tests.integration.helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
QUERY = '{"query": "{ assetNodes { assetKey { path } groupName } }"}'


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def asset_nodes(port: int) -> list:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=QUERY.encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]["assetNodes"]


def test_up_serves_the_ui_and_one_ctrl_c_stops_everything():
    home = tempfile.mkdtemp(prefix="pulsemart-up-")
    ui_port, api_port, kafka_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSEMART_", "DAGSTER_"))}
    env.update(PULSEMART_HOME=home, PULSEMART_KAFKA_PORT=str(kafka_port))
    up = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "pulsemart"),
            "up",
            "--ui-port",
            str(ui_port),
            "--api-port",
            str(api_port),
            "--rate",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 150
        nodes = None
        while time.monotonic() < deadline and up.poll() is None:
            try:
                nodes = asset_nodes(ui_port)
                break
            except OSError:
                time.sleep(1)
        assert nodes, "the Dagster UI did not answer, or its code location failed to load"
        groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
        assert groups["kafka/shop_events"] == "ingest" and groups["kafka/shop_catalog"] == "ingest"
        # The whole code location loaded under `dagster dev` (which re-parses the dbt project).
        assert (
            groups["datamart/fct_order_lines"] == "datamart"
            and groups["ml/recommendations"] == "ml"
        )
        descendants = [p.pid for p in psutil.Process(up.pid).children(recursive=True)]
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=90)
    finally:
        # A failed assertion above must not leave a whole stack running: stop it the way a user
        # would (Ctrl-C), and only then kill; SIGKILL alone would orphan its children.
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=90)
            except subprocess.TimeoutExpired:
                up.kill()
    assert up.returncode == 0, output
    assert (
        "Dagster UI:" in output
        and "stopped: simulator, stream-1, serving, dagster, kafka, postgres" in output
    )
    time.sleep(1)
    assert not [
        pid
        for pid in descendants
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert not listening(ui_port) and not listening(api_port) and not listening(kafka_port)
    assert not started_in(Path(home))
    shutil.rmtree(home, ignore_errors=True)
