"""A stop signal that cannot be lost between Dagster's handlers.

Inside an op, Dagster turns SIGINT and SIGTERM into an exception raised wherever the main thread
happens to be. When that is a garbage-collection callback (a weakref callback or a `__del__`;
SQLAlchemy and psycopg both have them), Python prints "Exception ignored in ..." and drops the
exception, and the run goes on as if no signal had come. Between ops Dagster only notes the
signal, and forgets it when the run ends. Either way a `pulsemart ingest` told to stop could go
on landing and deciding for minutes.

Python writes the number of every signal it handles to the wakeup file descriptor, whichever
handler is installed at the time. `record_stop_signals` points that descriptor at a pipe, and
`stop_requested` reads it at the checkpoints the long loops pass between batches: a signal
that an exception lost is still seen there, and the caller raises it again.
"""

from __future__ import annotations

import os
import signal
import threading

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_pipe: dict[str, int] = {}
_seen = {"stop": False}


def record_stop_signals() -> None:
    """From now on, remember every SIGINT and SIGTERM this process handles. Main thread only
    (Python's rule for signal handling); elsewhere nothing is recorded."""
    if _pipe or threading.current_thread() is not threading.main_thread():
        return
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    _pipe.update(read=read, write=write)


def forget_stop_signals() -> None:
    """For a forked child: its signals are its own, not its parent's."""
    if _pipe and threading.current_thread() is threading.main_thread():
        signal.set_wakeup_fd(-1)
    for fd in _pipe.values():
        os.close(fd)
    _pipe.clear()
    _seen["stop"] = False


def stop_requested() -> bool:
    """Whether a SIGINT or SIGTERM has been handled since `record_stop_signals`, whether or not
    the exception it raised got through. Always False where nothing is recorded."""
    if not _pipe:
        return False
    while True:
        try:
            received = os.read(_pipe["read"], 512)
        except BlockingIOError:
            break
        if not received:
            break
        if _STOP_SIGNALS.intersection(received):
            _seen["stop"] = True
    return _seen["stop"]
