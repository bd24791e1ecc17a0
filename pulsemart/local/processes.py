"""Pid files, port checks and readiness polling for the processes pulsemart starts."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil


class ServiceError(RuntimeError):
    """A service could not be started, reached or stopped; the message says what to do."""


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in `pid_file` if that process is still alive, else None.

    A stale file (the process died without cleaning up) is removed, so a crash never
    blocks the next `up`.
    """
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        pid_file.unlink(missing_ok=True)
        return None
    try:
        process = psutil.Process(pid)
        alive = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        alive = False
    if not alive:
        pid_file.unlink(missing_ok=True)
        return None
    return pid


def write_pid(pid_file: Path, pid: int) -> None:
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{pid}\n")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    """Poll `check` until it is true; raise ServiceError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise ServiceError(f"{what} was not ready after {timeout_s:.0f} s")


def stop_process_tree(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM a process and its children, then SIGKILL whatever is left after `timeout_s`."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    processes = [root, *root.children(recursive=True)]
    for process in processes:
        try:
            process.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def stop_leftovers(marker: str) -> list[int]:
    """Stop the Dagster processes whose command line names `marker` (the home folder): a last
    sweep for run workers that left both the process tree and the process group. Only Dagster's:
    a user's `tail -f` on a log under the home is not ours to stop."""
    me = os.getpid()
    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.pid != me and marker in cmdline and "dagster" in cmdline:
            leftovers.append(process)
    for process in leftovers:
        stop_process_tree(process.pid, timeout_s=5)
    return [p.pid for p in leftovers]


def kill_session(pid: int) -> None:
    """SIGKILL what is left of the process group a child was started in (start_new_session):
    run workers that Dagster launched and that outlived their parent are re-parented away from
    the tree, but stay in the group."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
