"""The response cache keeps an answer until a change it depends on, and never beyond its staleness
bound."""

import asyncio
import threading
import time

import psycopg

from pulsemart.serving.cache import (
    ANY_PRODUCT,
    CATALOG,
    INVALIDATIONS_KEPT,
    TRENDING,
    ResponseCache,
    catalog_category_tag,
    category_tag,
    customer_tag,
    fold_change,
    product_tag,
    row_key,
    session_tag,
    start_poller,
)
from pulsemart.serving.encode import json_body
from pulsemart.serving.fragments import ITEM, ITEM_COLUMNS, PRODUCT, compose, row_body


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
    from_batch,
    to_batch,
    products=(),
    categories=(),
    customers=(),
    sessions=(),
    catalog=False,
    catalog_categories=(),
):
    lists = [list(x) for x in (products, categories, customers, sessions)]
    return fold_change([from_batch, to_batch, *lists, catalog, list(catalog_categories)])


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


def product(product_id, price, views=0, category="Garden"):
    """A search item: a product's serving row."""
    return {
        "product_id": product_id,
        "description": f"thing {product_id}",
        "category": category,
        "unit_price": price,
        "currency": "GBP",
        "available": True,
        "stock": 3,
        "customization_options": None,
        "customizable": False,
        "views": views,
        "carts": 0,
        "purchases": 0,
        "popularity": views,
        "updated_event_time": "2011-01-01T00:00:00+00:00",
    }


def recommended(product_id, price, because=()):
    """A recommended item: the ITEM view of a product, then the blend's own fields."""
    item = {k: v for k, v in product(product_id, price).items() if k in ITEM_VIEW}
    return {**item, "score": 0.5, "source": "session", "because": list(because)}


ITEM_VIEW = set(ITEM_COLUMNS)


def search_answer(*items):
    return {"count": len(items), "items": list(items)}


def keep(cache, key, answer, view, tags):
    body = json_body(answer)
    kept, rows = compose(answer, body, view)
    cache.put_many(cache.begin(), [(key, kept, tags), *rows])
    return body


def test_an_answer_put_back_together_is_the_very_body_read():
    cache, clock = make(max_entries=100)
    cache.observe(V1, 1, [], clock.now)
    answers = {
        ("search", 1): (search_answer(product("p1", 2.0), product("p2", 2.5)), PRODUCT),
        ("search", 2): (search_answer(), PRODUCT),
        ("recs", 1): (
            {
                "customer_id": "c1",
                "model_version": "3",
                "items": [recommended("p1", 12.0, ["p9"]), recommended("p3", 0.85)],
            },
            ITEM,
        ),
        # A product the serving tables do not know: every column but its id is null.
        ("recs", 2): ({"items": [{**dict.fromkeys(ITEM_COLUMNS), "product_id": "px"}]}, ITEM),
    }
    bodies = {key: keep(cache, key, answer, view, []) for key, (answer, view) in answers.items()}
    assert {key: cache.get(key) for key in answers} == bodies
    assert cache.get(row_key(ITEM, "px")) == row_body(ITEM, {"product_id": "px"})


def test_an_answer_whose_items_are_not_last_is_kept_whole():
    answer = {"items": [product("p1", 1.0)], "count": 1}
    body = json_body(answer)
    assert compose(answer, body, PRODUCT) == (body, [])


def test_a_counter_change_keeps_the_shape_and_the_new_row_shows_in_it():
    cache, clock = make(max_entries=100)
    cache.observe(V1, 1, [], clock.now)
    by_price = search_answer(product("p1", 2.0), product("p2", 2.5))
    keep(cache, "by price", by_price, PRODUCT, [catalog_category_tag("Garden")])
    keep(cache, "other", search_answer(product("p2", 2.5)), PRODUCT, [CATALOG])
    # Views of p1: its row goes, for the poller to read again; the answers' shapes stay.
    dropped = cache.observe(V1, 2, [change(1, 2, ["p1"], ["garden"])], clock.now)
    assert dropped == [row_key(PRODUCT, "p1")]
    assert cache.get("by price") is None and cache.get("other") is not None
    viewed = product("p1", 2.0, views=7)
    cache.put_many(cache.begin(), [(row_key(PRODUCT, "p1"), row_body(PRODUCT, viewed), [])])
    assert cache.get("by price") == json_body(search_answer(viewed, product("p2", 2.5)))
    # A price change in the category drops the shape itself.
    cache.observe(
        V1,
        3,
        [change(2, 3, ["p2"], ["garden"], catalog=True, catalog_categories=["garden"])],
        clock.now,
    )
    assert cache.get("by price") is None and cache.get("other") is None


class ChangeLog:
    """A connection whose poll returns fold progress 1 and no changes; counts the rounds."""

    def __init__(self, fail_first: int = 0):
        self.rounds = 0
        self.fail_first = fail_first

    def __call__(self):
        if self.fail_first:
            self.fail_first -= 1
            raise psycopg.OperationalError("database away")
        return self

    def execute(self, statement, params):
        self.rounds += 1
        return self

    def fetchone(self):
        return (1, "t0", None, None, None, [])


class OneFold(ChangeLog):
    """A connection whose poll returns one fold, from batch 1 to 2, that viewed p1."""

    def fetchone(self):
        return (2, "t0", None, None, None, [[1, 2, ["p1"], ["garden"], [], [], False, []]])

    def close(self):
        pass


def test_the_poller_keeps_the_cache_fresh_while_the_event_loop_is_busy():
    # A round on the event loop waited for the loop; a saturated loop pushed rounds past the
    # bound, and every answer of the meantime was read and not kept.
    cache = ResponseCache(max_staleness_s=0.25)
    log = ChangeLog()
    thread, stop = start_poller(cache, log, poll_s=0.01)

    async def busy_loop():
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # no await: nothing else runs on this loop
            pass
        return log.rounds, cache.fresh()

    try:
        rounds_before = log.rounds
        rounds_after, fresh = asyncio.run(busy_loop())
    finally:
        stop.set()
        thread.join(5)
    assert rounds_after - rounds_before >= 2 and fresh
    assert not thread.is_alive()


def test_the_poller_reads_again_the_rows_a_fold_dropped():
    cache = ResponseCache()
    cache.observe((None, None, None), 1, [], time.monotonic(), "t0")
    keep(cache, "by price", search_answer(product("p1", 2.0)), PRODUCT, [CATALOG])
    viewed = product("p1", 2.0, views=3)
    stop, asked = threading.Event(), []

    def refresh(conn, keys):
        asked.extend(keys)
        stop.set()
        return [(key, row_body(PRODUCT, viewed), [product_tag("p1")]) for key in keys]

    cache.poll(OneFold(), stop, poll_s=0.001, refresh=refresh)
    assert asked == [row_key(PRODUCT, "p1")]
    assert cache.get("by price") == json_body(search_answer(viewed))


def test_the_poller_connects_again_after_an_error_and_stops_when_told():
    cache = ResponseCache()
    log = ChangeLog(fail_first=2)
    thread, stop = start_poller(cache, log, poll_s=0.005)
    deadline = time.monotonic() + 10
    while log.rounds == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(5)
    assert log.rounds > 0 and log.fail_first == 0 and not thread.is_alive()
    assert cache.seen == 1
