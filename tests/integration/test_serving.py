"""Serving end to end: simulated events → ingest → quality → serving tables → the API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import dagster as dg
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.contracts import build_event, encode_event, key_for, topic_for
from pulsemart.serving.api import ServingConfigError, create_app
from pulsemart.serving.cache import ResponseCache
from pulsemart.serving.fold import refresh_serving
from pulsemart.stream.simulator import generate
from tests.integration.helpers import produce_raw, produce_simulated

pytestmark = pytest.mark.integration
TOPICS = ["shop.catalog", "shop.events"]
KEY = "test-key-123"
SERVING_TABLES = ("product_state", "customer_profile", "trending", "session_funnel", "progress")


@pytest.fixture
def stream(fresh_stream, db):
    """An empty stream and empty serving tables (fresh_stream empties the layers below)."""
    db.execute(
        "truncate serving.product_state, serving.customer_profile, serving.trending, "
        "serving.session_funnel, serving.progress"
    )
    db.commit()
    return fresh_stream


@pytest.fixture
def client(stream):
    """The app without its response cache: these tests read right after writing, and the cache
    may answer up to its staleness bound late (test_cache_staleness.py measures that bound)."""
    app = create_app(
        stream.model_copy(update={"api_key": SecretStr(KEY)}),
        cache=ResponseCache(max_staleness_s=0),
    )
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        yield client


def produce_events(settings, events: list[dict]) -> None:
    for event in events:
        produce_raw(
            settings, topic_for(event["event_type"]), [encode_event(event)], keys=[key_for(event)]
        )


def catalog_event(event_type: str, at: datetime, **fields) -> dict:
    return build_event(event_type, event_time=at, source="test", **fields)


def snapshot(db) -> dict:
    query = psycopg.sql.SQL("select to_jsonb(s) from {} s order by 1")
    return {
        t: db.execute(query.format(psycopg.sql.Identifier("serving", t))).fetchall()
        for t in SERVING_TABLES
    }


def latest_event_time(db) -> datetime:
    return db.execute("select max_event_time from serving.progress").fetchone()[0]


def test_events_reach_search_and_recommendations_and_changes_follow(stream, db, client):
    produce_simulated(stream, list(generate(3000, seed=11)))
    report = catch_up(stream, defs, TOPICS, serve=True)
    assert report.serving["events_folded"] > 2500 and report.serving["quality_batches_folded"] >= 1

    # Search by category, price range and availability.
    found = client.get(
        "/products/search",
        params={
            "category": "home_decor",
            "price_min": 2,
            "price_max": 20,
            "available": True,
            "sort": "price",
        },
    ).json()
    prices = [item["unit_price"] for item in found["items"]]
    assert found["count"] > 0 and prices == sorted(prices)
    assert all(
        i["category"] == "home_decor" and 2 <= i["unit_price"] <= 20 and i["available"] is not False
        for i in found["items"]
    )
    by_text = client.get(
        "/products/search", params={"q": found["items"][0]["description"][:5].lower()}
    ).json()
    assert (
        found["items"][0]["description"][:5].lower() in by_text["items"][0]["description"].lower()
    )

    # A known customer gets personalized trending; an unknown one the plain trending list.
    customer = db.execute(
        "select customer_id from serving.customer_profile order by views desc limit 1"
    ).fetchone()[0]
    mine = client.get(f"/customers/{customer}/recommendations", params={"k": 5}).json()
    assert mine["source"] == "personalized_trending" and len(mine["items"]) == 5
    anyone = client.get("/customers/nobody-knows-me/recommendations", params={"k": 5}).json()
    assert anyone["source"] == "trending" and len(anyone["items"]) == 5
    top = anyone["items"][0]["product_id"]

    # Then: the top product sells out and is repriced; another is repriced twice, the newer
    # change arriving first (in the same batch and, below, in a later one).
    now = latest_event_time(db)
    other = found["items"][1]["product_id"]
    produce_events(
        stream,
        [
            catalog_event(
                "price_changed",
                now + timedelta(minutes=1),
                product_id=top,
                unit_price=123.45,
                currency="GBP",
            ),
            catalog_event(
                "availability_changed",
                now + timedelta(minutes=1),
                product_id=top,
                stock=0,
                available=False,
                reason="sold_out",
            ),
            catalog_event(
                "price_changed",
                now + timedelta(minutes=30),
                product_id=other,
                unit_price=77.0,
                currency="GBP",
            ),
            catalog_event(
                "price_changed",
                now + timedelta(minutes=20),
                product_id=other,
                unit_price=11.0,
                currency="GBP",
            ),
        ],
    )
    catch_up(stream, defs, TOPICS, serve=True)
    [gone] = client.get("/products/search", params={"q": top}).json()["items"]
    assert gone["unit_price"] == 123.45 and gone["available"] is False and gone["stock"] == 0
    assert top not in {
        i["product_id"]
        for i in client.get("/products/search", params={"available": True, "limit": 100}).json()[
            "items"
        ]
    }
    for who in (customer, "nobody-knows-me"):
        items = client.get(f"/customers/{who}/recommendations", params={"k": 100}).json()["items"]
        assert top not in {i["product_id"] for i in items}
    assert (
        client.get("/products/search", params={"q": other}).json()["items"][0]["unit_price"] == 77.0
    )

    produce_events(
        stream,
        [
            catalog_event(
                "price_changed",
                now + timedelta(minutes=10),
                product_id=other,
                unit_price=5.0,
                currency="GBP",
            )
        ],
    )
    catch_up(stream, defs, TOPICS, serve=True)
    assert (
        db.execute(
            "select count(*) from quality.events_clean where product_id = %s "
            "and event_type = 'price_changed' and payload->>'unit_price' = '5.0'",
            (other,),
        ).fetchone()[0]
        == 1
    )
    assert (
        client.get("/products/search", params={"q": other}).json()["items"][0]["unit_price"] == 77.0
    )

    # Folding again changes nothing.
    before = snapshot(db)
    again = refresh_serving(db)
    db.commit()
    assert again.batches == 0 and snapshot(db) == before

    metrics = client.get("/metrics/realtime").json()
    assert metrics["freshness"]["last_quality_batch_folded"] == again.to_batch
    assert {p["topic"] for p in metrics["partitions"]} == set(TOPICS)
    assert metrics["quality_last_5m"]["records"] >= 3000


def test_auth_validation_and_fallback(stream, client):
    produce_simulated(stream, list(generate(600, seed=2)))
    catch_up(stream, defs, TOPICS, serve=True)
    bare = TestClient(client.app)
    assert bare.get("/health").status_code == 200
    assert bare.get("/products/search").status_code == 401
    assert bare.get("/metrics/realtime", headers={"X-API-Key": "wrong"}).status_code == 403
    assert (
        bare.get("/customers/C1/recommendations", headers={"X-API-Key": "wrong"}).status_code == 403
    )

    # A price range upside down matches nothing: an empty result, as documented, not an error.
    upside_down = client.get("/products/search", params={"price_min": 10, "price_max": 5})
    assert upside_down.status_code == 200 and upside_down.json() == {"count": 0, "items": []}
    # The cache is off here (a bound of 0): every answer says it was read and not kept.
    assert upside_down.headers["X-Cache"] == "stale"
    response = client.get(
        "/products/search", params={"sort": "name; drop table serving.product_state"}
    )
    assert response.status_code == 422 and "sort" in json.dumps(response.json())
    assert client.get("/products/search", params={"limit": 0}).status_code == 422
    assert client.get("/customers/C1/recommendations", params={"k": "many"}).status_code == 422
    hostile = client.get(
        "/products/search", params={"q": "%' or 1=1; --", "category": "x' or '1'='1"}
    )
    assert hostile.status_code == 200 and hostile.json()["count"] == 0

    unknown = client.get("/customers/no-such-customer/recommendations", params={"k": 3}).json()
    assert unknown["source"] == "trending" and len(unknown["items"]) == 3


def test_the_app_refuses_to_start_without_a_key_unless_told(settings):
    with pytest.raises(ServingConfigError, match="PULSEMART_API_KEY"):
        create_app(settings.model_copy(update={"api_key": None}))
    app = create_app(settings.model_copy(update={"api_key": None}), insecure_no_auth=True)
    with TestClient(app) as open_client:
        assert open_client.get("/metrics/realtime").status_code == 200


def test_the_sensor_requests_a_refresh_only_when_a_quality_batch_waits(stream, db):
    import dagster as dg

    from orchestration.resources import build_resources

    sensor = next(s for s in defs.sensors if s.name == "serving_sensor")
    produce_simulated(stream, list(generate(300, seed=5)))
    catch_up(stream, defs, TOPICS)  # decided, not yet folded
    with dg.instance_for_test() as instance:

        def tick():
            with dg.build_sensor_context(instance=instance, resources=build_resources()) as context:
                return sensor(context)

        waiting = tick()
        assert [r.job_name for r in waiting.run_requests] == ["refresh_serving"]
        refresh_serving(db)
        db.commit()
        assert tick().skip_reason.skip_message == "no quality batch waits to be folded"


def test_sensor_driven_runs_bring_produced_events_to_search(stream, client):
    """The path the daemon takes: Kafka sensors plan ingest runs, the quality sensor launches
    decide_and_serve, and the product shows in search with its new price."""
    from orchestration.resources import build_resources

    produce_simulated(stream, list(generate(600, seed=5)))
    product = client.get("/products/search", params={"limit": 1}).json()
    assert product["count"] == 0  # nothing served before the runs

    def tick_and_run(sensor_name: str, instance) -> int:
        sensor = next(s for s in defs.sensors if s.name == sensor_name)
        with dg.build_sensor_context(instance=instance, resources=build_resources()) as context:
            requests = sensor(context).run_requests or []
        for request in requests:
            assert (
                defs.resolve_job_def(request.job_name)
                .execute_in_process(
                    run_config=request.run_config or {}, tags=request.tags, instance=instance
                )
                .success
            )
        return len(requests)

    with dg.instance_for_test() as instance:
        assert tick_and_run("kafka_shop_catalog_sensor", instance) > 0
        assert tick_and_run("kafka_shop_events_sensor", instance) > 0
        assert tick_and_run("quality_sensor", instance) == 1
        found = client.get("/products/search", params={"limit": 5, "sort": "popularity"}).json()
        assert found["count"] > 0
        assert tick_and_run("serving_sensor", instance) == 0  # decide_and_serve folded it already


def test_an_app_stopped_right_after_it_starts_stops_every_time(settings):
    # Stopping while the pool still opens its first connections raced with the version poller's
    # cancel; one lost cancel kept the shutdown waiting for ever. A rejected request needs no
    # connection, so each stop lands while the pool is still filling.
    keyed = settings.model_copy(update={"api_key": SecretStr("k")})
    for _ in range(150):
        app = create_app(keyed, cache=ResponseCache())
        with TestClient(app, headers={"X-API-Key": "k"}) as client:
            assert client.get("/products/search", params={"max_price": "x"}).status_code == 422
