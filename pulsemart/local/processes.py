"""Pid files, port checks and readiness polling for the processes pulsemart starts."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


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


def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1
) -> None:
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
    _terminate([root, *root.children(recursive=True)], timeout_s)


def adopt_orphans() -> bool:
    """Make this process the "child subreaper" of everything it starts from now on (Linux's
    PR_SET_CHILD_SUBREAPER): a descendant whose parent exits (a Dagster run worker outliving
    the daemon that launched it) is re-parented to this process instead of init, so it stays
    among our descendants and `stop_descendants` finds it, without matching command lines.
    Returns False where the kernel has no such setting."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def stop_descendants(timeout_s: float = 10.0) -> list[int]:
    """Stop every process still below this one (its children, theirs, and orphans it adopted):
    SIGTERM, then SIGKILL after `timeout_s`. Returns their pids."""
    left = psutil.Process().children(recursive=True)
    _terminate(left, timeout_s)
    return [process.pid for process in left]


def _terminate(processes: list[psutil.Process], timeout_s: float) -> None:
    """SIGTERM each process, then SIGKILL whichever is still alive after `timeout_s`."""
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


def kill_session(pid: int) -> None:
    """SIGKILL what is left of the process group a child was started in (start_new_session):
    what stayed in the group after its leader's tree was stopped."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
