"""`pulsemart up`: the embedded services, Dagster (UI and daemon), real-time workers and a
trickle of events.

Children run in sessions of their own so that Ctrl-C reaches only this process, which then
stops them in order (event trickle, serving API, Dagster, services) and leaves no process or
port behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pulsemart.config import Settings
from pulsemart.local import stack
from pulsemart.local.processes import (
    ServiceError,
    adopt_orphans,
    kill_session,
    port_in_use,
    stop_descendants,
    stop_process_tree,
    wait_until,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# A little dirt by default: enough for fixes and quarantine to show in the UI and the dashboard
# within minutes, little enough that the shop's figures stay plausible.
TRICKLE_DIRTY_RATE = 0.02


@dataclass
class Child:
    name: str
    process: subprocess.Popen


def dagster_home(settings: Settings) -> Path:
    home = settings.home / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def _spawn(name: str, args: list[str], env: dict, settings: Settings) -> Child:
    with open(settings.run_dir / f"{name}.log", "ab") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            args,
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Child(name, process)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _api_key(settings: Settings) -> str:
    """PULSEMART_API_KEY, or a key made for this session, written (owner-only) to the run folder."""
    if settings.api_key:
        return settings.api_key.get_secret_value()
    key = secrets.token_urlsafe(24)
    fd = os.open(settings.run_dir / "api_key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(key + "\n")
    return key


def trickle_args(
    rate: float, dirty_rate: float, seed: int, api_url: str | None = None
) -> list[str]:
    """`pulsemart simulate` arguments for the trickle: endless, paced, dated now, a little
    dirty, and with `api_url`, shoppers who react to the API's recommendations."""
    return [
        "simulate",
        "--events",
        "1000000000",
        "--rate",
        str(rate),
        "--seed",
        str(seed),
        "--live",
        "--dirty-rate",
        str(dirty_rate),
        *(["--react-to", api_url] if api_url else []),
    ]


def run_up(
    settings: Settings,
    ui_port: int,
    rate: float,
    echo=print,
    api_port: int = 8000,
    dirty_rate: float = TRICKLE_DIRTY_RATE,
    stream_workers: int = 1,
) -> None:
    """Start everything, block until Ctrl-C (or a child dies), then stop everything."""
    if port_in_use("127.0.0.1", ui_port):
        raise ServiceError(
            f"port {ui_port} is already in use; choose another with `pulsemart up --ui-port`"
        )
    if port_in_use("127.0.0.1", api_port):
        raise ServiceError(
            f"port {api_port} (the serving API) is already in use; choose another with "
            "`pulsemart up --api-port`"
        )
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    # Ctrl-C and SIGTERM both mean "stop everything" (a shell may start us with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    stack.up(settings)
    adopt_orphans()  # after the services: they detach on purpose and outlive this command
    bin_dir = Path(sys.executable).parent
    # The venv's bin first on PATH: `make demo` does not activate it, and dagster-dbt looks for
    # `dbt` on PATH when `dagster dev` prepares the dbt manifest.
    env = dict(
        os.environ,
        DAGSTER_HOME=str(dagster_home(settings)),
        PULSEMART_HOME=str(settings.home),
        PATH=os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")]),
    )
    children: list[Child] = []
    api_key = _api_key(settings)
    try:
        children.append(
            _spawn(
                "dagster",
                [
                    str(bin_dir / "dagster"),
                    "dev",
                    "-w",
                    str(REPO_ROOT / "workspace.yaml"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(ui_port),
                ],
                env,
                settings,
            )
        )
        # The serving API starts while Dagster does.
        serving = _spawn(
            "serving",
            [str(bin_dir / "pulsemart"), "serve", "--port", str(api_port)],
            dict(env, PULSEMART_API_KEY=api_key),
            settings,
        )
        children.append(serving)
        # Real-time workers join the consumer group while Dagster starts; they report runless
        # events to its webserver (docs/lanes.md).
        for n in range(stream_workers):
            children.append(
                _spawn(
                    f"stream-{n + 1}",
                    [str(bin_dir / "pulsemart"), "stream"],
                    dict(env, PULSEMART_DAGSTER_URL=f"http://127.0.0.1:{ui_port}"),
                    settings,
                )
            )
        echo("starting Dagster (UI and daemon)…")
        wait_until(
            lambda: port_in_use("127.0.0.1", ui_port) or children[0].process.poll() is not None,
            120,
            "the Dagster UI",
        )
        if children[0].process.poll() is not None:
            raise ServiceError(f"Dagster exited; see {settings.run_dir / 'dagster.log'}")
        if rate > 0:
            children.append(
                _spawn(
                    "simulator",
                    [
                        str(bin_dir / "pulsemart"),
                        *trickle_args(
                            rate, dirty_rate, int(time.time()), f"http://127.0.0.1:{api_port}"
                        ),
                    ],
                    dict(env, PULSEMART_API_KEY=api_key),
                    settings,
                )
            )
        echo(f"Dagster UI:        http://127.0.0.1:{ui_port}")
        wait_until(
            lambda: port_in_use("127.0.0.1", api_port) or serving.process.poll() is not None,
            60,
            "the serving API",
        )
        if serving.process.poll() is not None:
            raise ServiceError(f"the serving API exited; see {settings.run_dir / 'serving.log'}")
        echo(
            f"serving API:       http://127.0.0.1:{api_port}/docs (X-API-Key: "
            + ("$PULSEMART_API_KEY)" if settings.api_key else f"in {settings.run_dir / 'api_key'})")
        )
        # The key rides in the fragment, which the browser never sends to a server or a log.
        shown_key = "<your PULSEMART_API_KEY>" if settings.api_key else api_key
        echo(f"dashboard:         http://127.0.0.1:{api_port}/dashboard#key={shown_key}")
        echo(
            f"datamart docs:     http://127.0.0.1:{api_port}/datamart/docs/ (after the first dbt docs "
            "build; `pulsemart datamart docs` makes it now)"
        )
        echo(
            f"real-time lane:    {stream_workers} worker(s) in group pulsemart-realtime "
            "(`pulsemart stream --status`)"
            if stream_workers
            else "real-time lane:    off (--stream-workers 0)"
        )
        echo(
            f"events trickle:    {rate:g} events/s into shop.events and shop.catalog, dated now, "
            f"{dirty_rate:.0%} dirty; shoppers click the API's recommendations that suit them"
            if rate > 0
            else "events trickle:    off (--rate 0)"
        )
        echo(f"logs:              {settings.run_dir}")
        echo("press Ctrl-C to stop everything")
        while all(child.process.poll() is None for child in children):
            time.sleep(0.5)
        dead = next(child for child in children if child.process.poll() is not None)
        echo(
            f"{dead.name} exited with code {dead.process.returncode}; see {settings.run_dir / (dead.name + '.log')}"
        )
    except KeyboardInterrupt:
        echo("\nstopping…")
    finally:
        # A second Ctrl-C while stopping would orphan whatever is not stopped yet.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(children):
            stop_process_tree(child.process.pid, timeout_s=15)
            kill_session(child.process.pid)
        stopped = stack.down(settings)
        stop_descendants(timeout_s=5)  # run workers that outlived the daemon, adopted above
        echo(f"stopped: {', '.join([child.name for child in reversed(children)] + stopped)}")
