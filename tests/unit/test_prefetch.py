"""The ingest read-ahead: order kept, errors surfaced, memory bounded, early stop clean."""

import threading

import pytest

from pulsemart.stream.prefetch import prefetch


def test_yields_every_chunk_in_order():
    assert list(prefetch(iter([[1], [2, 3], [4]]))) == [[1], [2, 3], [4]]


def test_a_reader_error_is_raised_in_the_caller_after_the_chunks_before_it():
    def chunks():
        yield [1]
        raise RuntimeError("broker went away")

    got = []
    with pytest.raises(RuntimeError, match="broker went away"):
        got.extend(prefetch(chunks()))
    assert got == [[1]]


def test_reads_at_most_depth_chunks_ahead_and_stops_when_the_caller_does():
    produced = []

    def chunks():
        for i in range(1_000):
            produced.append(i)
            yield [i]

    stream = prefetch(chunks(), depth=3)
    assert next(stream) == [0]
    threading.Event().wait(0.3)  # let the reader run ahead as far as it may
    assert len(produced) <= 1 + 3 + 1  # taken, queued, and one blocked in put
    stream.close()
    count = len(produced)
    threading.Event().wait(0.3)
    assert len(produced) == count  # stopped: nothing read after the caller left


def test_a_reader_that_vanishes_without_a_word_is_an_error_not_a_hang(monkeypatch):
    # A thread cannot die silently through `run` (it hands over every error), so simulate the
    # reader being gone: the chunk source's thread ends at once and the queue stays empty.
    import pulsemart.stream.prefetch as module

    class GoneThread(threading.Thread):
        def __init__(self, *args, **kwargs):
            super().__init__(target=lambda: None, daemon=True)

    monkeypatch.setattr(module.threading, "Thread", GoneThread)
    with pytest.raises(RuntimeError, match="ended without a result"):
        list(prefetch(iter([[1]])))
