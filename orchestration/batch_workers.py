"""Forked worker processes for `catch_up`'s ingest batches, which stop when told.

Three ways a worker could outlive its parent or hang it, each closed here:
- the parent is killed outright: the kernel kills each worker with it (PR_SET_PDEATHSIG);
- the parent is interrupted (Ctrl-C, SIGTERM): each batch in flight is interrupted through
  Dagster's own handler (the op raises, its transaction rolls back, the run is marked
  failed), given a few seconds, then the workers are killed, busy or idle;
- `ProcessPoolExecutor.shutdown` would wait without end for a worker stuck in a batch: it is
  never called with `wait=True` on the interrupted path.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait

from orchestration.interrupts import forget_stop_signals

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the kernel kills this worker when its parent dies, however it dies
    (a SIGKILLed `pulsemart ingest` must not leave a worker holding a batch open)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's interrupted path below still stops its workers
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)
    # Ctrl-C reaches the whole process group: the parent decides how its workers stop (an
    # idle worker would otherwise print a KeyboardInterrupt traceback). A batch in flight
    # still gets Dagster's handler, which each run installs for both signals and which
    # interrupts the op.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    forget_stop_signals()


class BatchWorkers:
    """A fork-based process pool that remembers what is in flight, so it can be stopped."""

    def __init__(self, workers: int):
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        self._in_flight: list[Future] = []

    def map(self, fn: Callable, *iterables: Iterable) -> Iterator:
        """Like `Executor.map`: results in order, the first error raised."""
        self._in_flight = [self._pool.submit(fn, *args) for args in zip(*iterables, strict=True)]
        for future in self._in_flight:
            yield future.result()

    def close(self) -> None:
        """The normal end: every batch has returned; the idle workers exit."""
        self._pool.shutdown(wait=True)

    def stop(self, grace_s: float = 5.0) -> None:
        """The interrupted end: interrupt the batches in flight, give them `grace_s` to roll
        back and report, then kill every worker still alive."""
        processes = list(getattr(self._pool, "_processes", {}).values())  # no public list
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        wait([f for f in self._in_flight if not f.done()], timeout=grace_s)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(2)
        self._pool.shutdown(wait=False, cancel_futures=True)
