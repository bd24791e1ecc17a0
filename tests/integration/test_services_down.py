"""`pulsemart services down` after `eval "$(pulsemart services env)"`, as the README shows it:
the exported URLs name the embedded services, yet `down` stops both."""

import shlex
import shutil
import subprocess
import tempfile

import pytest

from pulsemart.config import load_settings
from pulsemart.local import broker, postgres
from tests.integration.conftest import free_port
from tests.integration.foreign import ROOT, cli_command, cli_env, living

pytestmark = pytest.mark.integration


def test_down_after_services_env_stops_what_pulsemart_started():
    home = tempfile.mkdtemp(prefix="pulsemart-down-")  # a stack of its own, not the session's
    env = cli_env(PULSEMART_HOME=home, PULSEMART_KAFKA_PORT=str(free_port()))
    for name in ("PULSEMART_DATABASE_URL", "PULSEMART_KAFKA_BOOTSTRAP"):
        env.pop(name, None)
    own = load_settings(
        {"PULSEMART_HOME": home, "PULSEMART_KAFKA_PORT": env["PULSEMART_KAFKA_PORT"]}
    )
    pulsemart = shlex.join(cli_command())
    try:
        up = subprocess.run(
            [*cli_command("services", "up")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert up.returncode == 0, up.stderr
        pids = [postgres.status(own)["pid"], broker.status(own)["pid"]]
        assert all(pids)
        script = f'eval "$({pulsemart} services env)" && {pulsemart} services status && {pulsemart} services down'
        down = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert "external" not in down.stdout  # status, too, sees them as pulsemart's own
        assert "stopped: kafka, postgres" in down.stdout
        assert living(pids) == []
    finally:
        broker.stop(own)
        postgres.stop(own)
        shutil.rmtree(home, ignore_errors=True)
