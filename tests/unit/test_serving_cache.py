"""The response cache keeps an answer until a change it depends on, and never beyond its staleness
bound."""

import asyncio

from psycopg_pool import PoolTimeout

from pulsemart.serving.cache import (
    ANY_PRODUCT,
    CATALOG,
    INVALIDATIONS_KEPT,
    TRENDING,
    ResponseCache,
    category_tag,
    customer_tag,
    fold_change,
    session_tag,
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(max_staleness_s=0.25, max_entries=10):
    clock = Clock()
    return ResponseCache(max_staleness_s, max_entries, clock=clock), clock


V1, V2 = ("deployed-1",), ("deployed-2",)


def change(
    from_batch, to_batch, products=(), categories=(), customers=(), sessions=(), catalog=False
):
    lists = [list(x) for x in (products, categories, customers, sessions)]
    return fold_change([from_batch, to_batch, *lists, catalog])


def put(cache, key, tags):
    cache.put(key, cache.begin(), key.encode(), tags)


def test_a_fold_drops_the_entries_it_names_and_keeps_the_rest():
    cache, clock = make()
    cache.observe(V1, 10, [], clock.now)
    put(cache, "alice", [customer_tag("alice")])
    put(cache, "bob", [customer_tag("bob")])
    put(cache, "garden", [category_tag("Garden")])
    put(cache, "kitchen", [category_tag("kitchen")])
    put(cache, "anything", [ANY_PRODUCT])
    cache.observe(
        V1, 12, [change(10, 11, customers=["alice"]), change(11, 12, ["p1"], ["garden"])], clock.now
    )
    kept = {k: cache.get(k) for k in ("alice", "bob", "garden", "kitchen", "anything")}
    assert kept == {
        "alice": None,
        "bob": b"bob",
        "garden": None,
        "kitchen": b"kitchen",
        "anything": None,
    }


def test_sessions_the_catalog_and_trending_are_named_like_the_others():
    cache, clock = make()
    cache.observe(V1, 1, [], clock.now, trending="t0")
    for key, tag in (("s1", session_tag("s1")), ("s2", session_tag("s2")), ("trend", TRENDING)):
        put(cache, key, [tag])
    put(cache, "offer", [CATALOG])
    cache.observe(V1, 2, [change(1, 2, ["p1"], sessions=["s1"])], clock.now, trending="t0")
    assert [cache.get(k) for k in ("s1", "s2", "trend", "offer")] == [
        None,
        b"s2",
        b"trend",
        b"offer",
    ]
    cache.observe(V1, 3, [change(2, 3, ["p1"], catalog=True)], clock.now, trending="t0")
    assert cache.get("offer") is None and cache.get("trend") == b"trend"
    cache.observe(V1, 3, [], clock.now, trending="t1")  # a new trending list, no fold
    assert cache.get("trend") is None and cache.get("s2") == b"s2"


def test_what_the_log_cannot_explain_drops_everything():
    cache, clock = make()
    cache.observe(V1, 10, [], clock.now)
    put(cache, "a", [customer_tag("a")])
    cache.observe(V1, 12, [change(11, 12)], clock.now)  # the fold from 10 was pruned: a gap
    assert cache.get("a") is None
    put(cache, "a", [customer_tag("a")])
    cache.observe(V1, 0, [], clock.now)  # a reset rewound the progress
    assert cache.get("a") is None
    put(cache, "a", [customer_tag("a")])
    cache.observe(V2, 0, [], clock.now)  # a promotion, a rollback or a scoring
    assert cache.get("a") is None
    put(cache, "a", [customer_tag("a")])
    cache.observe(V2, None, [], clock.now)  # the progress is gone (a truncate)
    assert cache.get("a") is None


def test_a_category_outside_ascii_depends_on_every_product():
    # Python's lower() and PostgreSQL's may differ beyond ASCII: no category tag there.
    assert category_tag("Épicerie") is None and category_tag("Garden") == category_tag("garden")


def test_nothing_is_served_or_kept_when_the_log_was_read_too_long_ago():
    cache, clock = make(max_staleness_s=0.25)
    assert cache.begin() is None  # never read
    cache.observe(V1, 1, [], clock.now)
    put(cache, "k", [ANY_PRODUCT])
    clock.now += 0.25
    assert cache.get("k") == b"k"  # exactly at the bound
    clock.now += 0.001
    assert cache.get("k") is None and cache.begin() is None
    put(cache, "other", [ANY_PRODUCT])
    cache.observe(V1, 1, [], clock.now)
    assert cache.get("other") is None and cache.get("k") == b"k"


def test_an_answer_read_across_a_change_it_depends_on_is_not_kept():
    cache, clock = make()
    cache.observe(V1, 1, [], clock.now)
    token = cache.begin()  # a request starts reading ...
    cache.observe(V1, 2, [change(1, 2, customers=["alice"])], clock.now)  # ... alice changes
    cache.put("alice", token, b"maybe old", [customer_tag("alice")])
    cache.put("bob", token, b"bob", [customer_tag("bob")])  # bob's did not: kept
    assert cache.get("alice") is None and cache.get("bob") == b"bob"
    token = cache.begin()
    cache.observe(V2, 2, [], clock.now)
    cache.put("bob", token, b"maybe old", [customer_tag("bob")])
    assert cache.get("bob") is None


def test_an_answer_older_than_the_invalidations_remembered_is_not_kept():
    cache, clock = make()
    cache.observe(V1, 0, [], clock.now)
    token = cache.begin()
    for batch in range(1, INVALIDATIONS_KEPT + 2):
        cache.observe(V1, batch, [change(batch - 1, batch, customers=["someone"])], clock.now)
    cache.put("bob", token, b"bob", [customer_tag("bob")])
    assert cache.get("bob") is None


def test_the_oldest_entries_go_first_beyond_the_limit():
    cache, clock = make(max_entries=2)
    cache.observe(V1, 1, [], clock.now)
    for key in ("a", "b", "c"):
        put(cache, key, [customer_tag(key)])
    assert [cache.get(k) for k in ("a", "b", "c")] == [None, b"b", b"c"]
    cache.observe(V1, 2, [change(1, 2, customers=["a", "b"])], clock.now)  # a is gone already
    assert cache.get("b") is None and cache.get("c") == b"c" and len(cache) == 1


class AbsorbingConnect:
    """A connect whose wait turns a cancel into a timeout, as psycopg_pool's wait for a
    connection can when the cancel races with the connection it hands over."""

    def __init__(self):
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if self.calls == 1:  # the first wait is long enough for the cancel to land in it
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                raise PoolTimeout("cancelled while waiting") from None
        raise PoolTimeout("no connection")


def test_the_version_poller_ends_when_told_even_after_its_cancel_was_absorbed():
    async def scenario():
        cache, _ = make()
        stop = asyncio.Event()
        task = asyncio.create_task(cache.poll(AbsorbingConnect(), stop, poll_s=0.005))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.05)
        absorbed = not task.done()
        stop.set()
        await asyncio.wait_for(task, 2)
        return absorbed

    assert asyncio.run(scenario())  # the cancel alone did not end it; the stop event did
