"""Read ahead in a thread while the caller writes: Kafka fetches and PostgreSQL COPY overlap.

The queue holds at most `depth` chunks, so memory stays bounded by chunk size whatever the
lag. An error in the reader is raised in the caller at the chunk where it happened; if the
caller stops early (an error while writing, an interrupt), the reader is told to stop and is
not waited on past its current poll. Neither side blocks forever: the reader is a daemon
thread that checks the stop flag between polls, and the caller waits in short slices and
notices a reader that ended without a word.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(chunks: Iterator, depth: int = 4) -> Iterator:
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the caller, which re-raises it
            put(_Failed(error))

    reader = threading.Thread(target=run, name="kafka-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            try:
                item = buffer.get(timeout=0.5)
            except queue.Empty:
                if reader.is_alive():
                    continue
                try:  # it may have put its last item just before ending
                    item = buffer.get_nowait()
                except queue.Empty:
                    raise RuntimeError(
                        "the Kafka read-ahead thread ended without a result"
                    ) from None
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)
