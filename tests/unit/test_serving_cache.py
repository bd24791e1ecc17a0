"""The response cache serves an entry only under the current, recently read data version."""

import asyncio
from contextlib import asynccontextmanager

from psycopg_pool import PoolTimeout

from pulsemart.serving.cache import ResponseCache


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(max_staleness_s=0.25, max_entries=10):
    clock = Clock()
    return ResponseCache(max_staleness_s, max_entries, clock=clock), clock


def test_an_entry_is_served_while_its_version_is_current_and_dropped_when_it_changes():
    cache, clock = make()
    cache.observe(("v1",), clock.now)
    cache.put("k", cache.current(), b"old")
    assert cache.get("k") == b"old"
    cache.observe(("v2",), clock.now)
    assert cache.get("k") is None
    cache.observe(("v1",), clock.now)  # not back from the dead either: the change cleared it
    assert cache.get("k") is None and cache.hits == 1 and cache.misses == 2


def test_nothing_is_served_or_kept_when_the_version_was_read_too_long_ago():
    cache, clock = make(max_staleness_s=0.25)
    assert cache.current() is None  # never read
    cache.observe(("v1",), clock.now)
    cache.put("k", cache.current(), b"body")
    clock.now += 0.25
    assert cache.get("k") == b"body"  # exactly at the bound
    clock.now += 0.001
    assert cache.get("k") is None and cache.current() is None
    cache.put("other", cache.current(), b"body")
    cache.observe(("v1",), clock.now)
    assert cache.get("other") is None and cache.get("k") == b"body"


def test_an_entry_read_under_an_older_version_is_not_kept():
    cache, clock = make()
    cache.observe(("v1",), clock.now)
    version = cache.current()  # a request starts under v1 ...
    cache.observe(("v2",), clock.now)  # ... the data changes while it reads
    cache.put("k", version, b"maybe old")
    assert cache.get("k") is None


def test_the_oldest_entries_go_first_beyond_the_limit():
    cache, clock = make(max_entries=2)
    cache.observe(("v1",), clock.now)
    for key in ("a", "b", "c"):
        cache.put(key, cache.current(), key.encode())
    assert [cache.get(k) for k in ("a", "b", "c")] == [None, b"b", b"c"]


class AbsorbingPool:
    """A pool whose wait for a connection turns a cancel into a timeout, as psycopg_pool's can
    when the cancel races with the connection it hands over."""

    def __init__(self):
        self.calls = 0

    @asynccontextmanager
    async def connection(self):
        self.calls += 1
        if self.calls == 1:  # the first wait is long enough for the cancel to land in it
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                raise PoolTimeout("cancelled while waiting") from None
        raise PoolTimeout("no connection")
        yield  # pragma: no cover


def test_the_version_poller_ends_when_told_even_after_its_cancel_was_absorbed():
    async def scenario():
        cache, _ = make()
        stop = asyncio.Event()
        task = asyncio.create_task(cache.poll(AbsorbingPool(), stop, poll_s=0.005))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        absorbed = not task.done()
        stop.set()
        await asyncio.wait_for(task, 2)
        return absorbed

    assert asyncio.run(scenario())  # the cancel alone did not end it; the stop event did
