"""The API's response cache against the real fold: an answer never misses a change committed
more than the cache's staleness bound before the request."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.serving.api import create_app
from pulsemart.serving.cache import MAX_STALENESS_S
from pulsemart.stream.simulator import generate
from tests.integration.helpers import produce_simulated
from tests.integration.test_serving import (
    TOPICS,
    catalog_event,
    latest_event_time,
    produce_events,
)

pytestmark = pytest.mark.integration
KEY = "cache-key"
WATCH_S = 1.0  # reads after each commit: well past the bound


def empty_serving(db) -> None:
    db.execute(
        "truncate serving.product_state, serving.customer_profile, serving.trending, "
        "serving.session_funnel, serving.progress"
    )
    db.commit()


def serve_simulated(settings, db, events: int, seed: int) -> None:
    """Empty serving tables, then `events` simulated events landed, decided and folded."""
    empty_serving(db)
    produce_simulated(settings, list(generate(events, seed=seed)))
    catch_up(settings, defs, TOPICS, serve=True)


def test_no_answer_is_staler_than_the_bound(fresh_stream, db):
    serve_simulated(fresh_stream, db, 400, 23)
    product = db.execute(
        "select product_id from serving.product_state where unit_price is not null "
        "order by product_id limit 1"
    ).fetchone()[0]
    app = create_app(fresh_stream.model_copy(update={"api_key": SecretStr(KEY)}))
    stale_ages, hits_before = [], 0
    with TestClient(app, headers={"X-API-Key": KEY}) as client:

        def price() -> float:
            [item] = client.get("/products/search", params={"q": product}).json()["items"]
            return item["unit_price"]

        for round_ in range(2):
            new_price = 500.0 + round_
            time.sleep(2 * MAX_STALENESS_S)  # the poller has read the current version
            old = price()
            assert price() == old and app.state.cache.hits > hits_before  # served from the cache
            hits_before = app.state.cache.hits
            produce_events(
                fresh_stream,
                [
                    catalog_event(
                        "price_changed",
                        latest_event_time(db) + timedelta(minutes=1),
                        product_id=product,
                        unit_price=new_price,
                        currency="GBP",
                    )
                ],
            )
            db.rollback()
            catch_up(fresh_stream, defs, TOPICS, serve=True)
            committed = time.monotonic()  # just after the fold's commit
            fresh_seen = False
            while time.monotonic() - committed < WATCH_S:
                asked = time.monotonic()
                seen = price()
                if seen == new_price:
                    fresh_seen = True
                else:  # (an old answer may follow a new one within the bound: no promise there)
                    assert seen == old
                    stale_ages.append(asked - committed)
            assert fresh_seen
    assert all(age <= MAX_STALENESS_S for age in stale_ages), max(stale_ages)


def test_a_fold_drops_only_the_answers_that_depend_on_what_it_touched(fresh_stream, db):
    serve_simulated(fresh_stream, db, 400, 29)
    product, category = db.execute(
        "select product_id, category from serving.product_state "
        "where unit_price is not null and category is not null order by product_id limit 1"
    ).fetchone()
    (other,) = db.execute(
        "select category from serving.product_state where lower(category) <> lower(%s) "
        "and unit_price is not null order by category limit 1",
        (category,),
    ).fetchone()
    (customer,) = db.execute("select customer_id from serving.customer_profile limit 1").fetchone()
    app = create_app(fresh_stream.model_copy(update={"api_key": SecretStr(KEY)}))
    changed = {"category": category, "limit": 100}
    untouched = {
        "/products/search": {"category": other, "limit": 100},
        f"/customers/{customer}": {},
    }
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        cache = app.state.cache
        time.sleep(2 * MAX_STALENESS_S)  # the poller has read the change log
        for path, params in [*untouched.items(), ("/products/search", changed)]:
            assert client.get(path, params=params).status_code == 200
        kept = {path: client.get(path, params=params).content for path, params in untouched.items()}

        # A new price for one product of `category`: no customer, no other category.
        produce_events(
            fresh_stream,
            [
                catalog_event(
                    "price_changed",
                    latest_event_time(db) + timedelta(minutes=1),
                    product_id=product,
                    unit_price=777.0,
                    currency="GBP",
                )
            ],
        )
        db.rollback()
        catch_up(fresh_stream, defs, TOPICS, serve=True)
        time.sleep(2 * MAX_STALENESS_S)
        hits = cache.hits
        for path, params in untouched.items():
            assert client.get(path, params=params).content == kept[path]
        assert cache.hits == hits + len(untouched)  # both answered from memory
        items = client.get("/products/search", params=changed).json()["items"]
        assert cache.hits == hits + len(untouched)  # the changed category was read again
        assert {i["product_id"]: i["unit_price"] for i in items}[product] == 777.0


def test_a_view_keeps_a_price_search_in_memory_and_shows_the_new_counters(fresh_stream, db):
    # Views are most of a shop's events and move only counters: an answer ordered by price
    # keeps its shape, and the viewed product's row is read again by the poller.
    serve_simulated(fresh_stream, db, 400, 31)
    product, category, price, views = db.execute(
        "select product_id, category, unit_price, views from serving.product_state "
        "where unit_price is not null and category is not null order by product_id limit 1"
    ).fetchone()
    search = {"category": category, "price_min": price, "price_max": price, "sort": "price"}
    app = create_app(fresh_stream.model_copy(update={"api_key": SecretStr(KEY)}))
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        cache = app.state.cache
        time.sleep(2 * MAX_STALENESS_S)  # the poller has read the change log
        before = client.get("/products/search", params=search)
        assert (
            before.status_code == 200
            and client.get("/products/search", params=search).headers["X-Cache"] == "hit"
        )

        viewed = catalog_event(
            "product_viewed",
            latest_event_time(db) + timedelta(minutes=1),
            customer_id="C-viewer",
            session_id="S-viewer",
            product_id=product,
            category=category,
            unit_price=price,
        )
        produce_events(fresh_stream, [viewed])
        db.rollback()
        catch_up(fresh_stream, defs, TOPICS, serve=True)
        time.sleep(2 * MAX_STALENESS_S)
        hits = cache.hits
        after = client.get("/products/search", params=search)
        assert after.headers["X-Cache"] == "hit" and cache.hits == hits + 1
        rows = {i["product_id"]: i for i in after.json()["items"]}
        assert rows[product]["views"] == views + 1
        assert [i["product_id"] for i in after.json()["items"]] == [
            i["product_id"] for i in before.json()["items"]
        ]


def test_a_catalog_event_that_changes_no_value_is_not_a_catalog_change(fresh_stream, db):
    """A catalog sync re-sending a product's known price moves its event time but no value:
    the fold does not log a catalog change, so the answers that depend on the catalog's
    attributes stay in the cache. A new price is one."""
    serve_simulated(fresh_stream, db, 300, 31)
    product, price = db.execute(
        "select product_id, unit_price from serving.product_state "
        "where unit_price is not null order by product_id limit 1"
    ).fetchone()

    def fold_price(unit_price: float, minutes: int) -> tuple[bool, float]:
        at = latest_event_time(db) + timedelta(minutes=minutes)
        event = catalog_event(
            "price_changed", at, product_id=product, unit_price=unit_price, currency="GBP"
        )
        produce_events(fresh_stream, [event])
        db.rollback()
        catch_up(fresh_stream, defs, TOPICS, serve=True)
        (logged,) = db.execute(
            "select catalog from serving.fold_changes order by to_batch desc limit 1"
        ).fetchone()
        (stored,) = db.execute(
            "select unit_price from serving.product_state where product_id = %s", (product,)
        ).fetchone()
        return logged, stored

    assert fold_price(price, 1) == (False, price)
    (moved,) = db.execute(
        "select price_event_time from serving.product_state where product_id = %s", (product,)
    ).fetchone()
    assert moved == latest_event_time(db)  # the event time moved all the same
    assert fold_price(price + 1, 2) == (True, price + 1)
