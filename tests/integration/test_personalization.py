"""Session personalization end to end: events through Kafka and the quality layer into the fold's
session state, and the blended, explained recommendations the API serves from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ml.names import RECOMMENDER
from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.contracts import build_event
from pulsemart.serving.api import create_app
from pulsemart.serving.cache import ResponseCache
from tests.integration.test_serving import TOPICS, produce_events

pytestmark = pytest.mark.integration
KEY = "test-key-personal"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
VERSION = "test-neighbours"


@pytest.fixture
def client(fresh_stream, db):
    # A deployed recommender version whose only rows are neighbours: P1's are N1 and N2, P2's
    # N2, N1's N3, and PX's (a product the catalog announces late) N9.
    db.execute("delete from serving.item_neighbours where model_version = %s", (VERSION,))
    db.execute(
        "insert into serving.model_deployments (model_name, model_version, deployed_by) "
        "values (%s, %s, 'test') on conflict (model_name) do update set "
        "model_version = excluded.model_version",
        (RECOMMENDER, VERSION),
    )
    with db.cursor() as cur:
        cur.executemany(
            "insert into serving.item_neighbours (model_name, model_version, product_id, rank, "
            "neighbour_id, score) values (%s, %s, %s, %s, %s, %s)",
            [
                (RECOMMENDER, VERSION, source, rank, neighbour, score)
                for source, rank, neighbour, score in [
                    ("P1", 1, "N1", 0.9),
                    ("P1", 2, "N2", 0.5),
                    ("N1", 1, "N3", 0.8),
                    ("PX", 1, "N9", 0.7),
                    ("P2", 1, "N2", 0.6),
                ]
            ],
        )
    db.commit()
    app = create_app(
        fresh_stream.model_copy(update={"api_key": SecretStr(KEY)}),
        cache=ResponseCache(max_staleness_s=0),
    )
    with TestClient(app, headers={"X-API-Key": KEY}) as client:
        yield client
    db.execute("delete from serving.model_deployments where model_version = %s", (VERSION,))
    db.execute("delete from serving.item_neighbours where model_version = %s", (VERSION,))
    db.commit()


def product(pid: str, at: datetime, price: float = 5.0, stock: int = 10) -> dict:
    return build_event(
        "product_upserted",
        event_time=at,
        source="test",
        product_id=pid,
        description=f"product {pid}",
        category="gifts",
        unit_price=price,
        currency="GBP",
        stock=stock,
    )


def view(session: str, pid: str, at: datetime, customer: str = "C1") -> dict:
    return build_event(
        "product_viewed",
        event_time=at,
        source="test",
        customer_id=customer,
        session_id=session,
        product_id=pid,
        category="gifts",
        unit_price=5.0,
    )


def cart(session: str, pid: str, at: datetime, customer: str = "C1") -> dict:
    return build_event(
        "cart_updated",
        event_time=at,
        source="test",
        customer_id=customer,
        session_id=session,
        product_id=pid,
        quantity=1,
        unit_price=5.0,
    )


def touches(db, scope: str, owner: str) -> list[tuple[str, str]] | None:
    row = db.execute(
        "select items from serving.recent_touches where scope = %s and owner_id = %s",
        (scope, owner),
    ).fetchone()
    db.commit()
    return None if row is None else [(e["product_id"], e["kind"]) for e in row[0]]


def ids(body: dict) -> list[str]:
    return [item["product_id"] for item in body["items"]]


def test_session_touches_steer_explained_recommendations(fresh_stream, db, client):
    catalog = [product(p, T0) for p in ("P1", "P2", "N1", "N2", "N3")]
    # Out of order: the view of P2 (earlier) arrives after the cart addition of P1.
    produce_events(
        fresh_stream,
        [
            *catalog,
            view("S1", "P1", T0 + timedelta(minutes=2)),
            view("S1", "PX", T0 + timedelta(minutes=3)),
            view("S1", "P2", T0 + timedelta(minutes=1)),
        ],
    )
    catch_up(fresh_stream, defs, TOPICS, serve=True)
    # The view of PX, a product the catalog has not announced, is held by the quality layer
    # (rule unknown_product) until the product is known: it is not lost, only not yet folded.
    assert touches(db, "session", "S1") == [("P1", "view"), ("P2", "view")]
    assert touches(db, "customer", "C1") == touches(db, "session", "S1")

    mine = client.get("/customers/C1/recommendations", params={"session_id": "S1", "k": 5}).json()
    assert mine["session_known"] and mine["model_version"] == VERSION
    assert "session" in mine["sources"] and mine["session_id"] == "S1"
    by_id = {item["product_id"]: item for item in mine["items"]}
    # N2 is a neighbour of both P1 and P2; N1 of P1 only.
    assert sorted(by_id["N2"]["because"]) == ["P1", "P2"]
    assert by_id["N1"]["because"] == ["P1"] and by_id["N1"]["source"] == "session"
    assert "N9" not in by_id and "PX" not in by_id
    assert mine["as_of"].startswith("2026-11-30T12:02")

    # The shopper adds N1 to the cart: it leaves the list, and its neighbour N3 joins. The
    # catalog announces PX and N9: the held view is released into the session, in event-time
    # order, and lends N9.
    produce_events(
        fresh_stream,
        [cart("S1", "N1", T0 + timedelta(minutes=4)), product("PX", T0), product("N9", T0)],
    )
    catch_up(fresh_stream, defs, TOPICS, serve=True)
    assert touches(db, "session", "S1") == [
        ("N1", "cart"),
        ("PX", "view"),
        ("P1", "view"),
        ("P2", "view"),
    ]
    after = client.get("/customers/C1/recommendations", params={"session_id": "S1", "k": 10})
    after = after.json()
    assert "N1" not in ids(after) and "N3" in ids(after)
    assert next(i for i in after["items"] if i["product_id"] == "N3")["because"] == ["N1"]
    assert next(i for i in after["items"] if i["product_id"] == "N9")["because"] == ["PX"]

    # The same session for an anonymous shopper; an unknown session falls back and says so.
    anonymous = client.get("/sessions/S1/recommendations", params={"k": 10}).json()
    assert anonymous["customer_id"] is None and "N3" in ids(anonymous)
    unknown = client.get("/sessions/never-seen/recommendations", params={"k": 3}).json()
    assert not unknown["session_known"] and unknown["sources"] == ["trending"]
    assert all(item["because"] == [] for item in unknown["items"])

    # A product that sells out is neither recommended nor listed as similar.
    similar = client.get("/products/P1/similar").json()
    assert ids(similar) == ["N1", "N2"] and similar["model_version"] == VERSION
    produce_events(
        fresh_stream,
        [
            build_event(
                "availability_changed",
                event_time=T0 + timedelta(minutes=5),
                source="test",
                product_id="N2",
                stock=0,
                available=False,
                reason="sold_out",
            )
        ],
    )
    catch_up(fresh_stream, defs, TOPICS, serve=True)
    assert ids(client.get("/products/P1/similar").json()) == ["N1"]
    gone = client.get("/customers/C1/recommendations", params={"session_id": "S1", "k": 10})
    assert "N2" not in ids(gone.json())


def test_session_state_is_bounded_in_entries_and_age(fresh_stream, db):
    views = [view("LONG", f"Q{i:02d}", T0 + timedelta(seconds=i)) for i in range(25)]
    old = view("OLD", "Q00", T0 - timedelta(hours=3), customer="C2")
    catalog = [product(f"Q{i:02d}", T0 - timedelta(days=1)) for i in (*range(25), 99)]
    produce_events(fresh_stream, [*catalog, *views, old])
    catch_up(fresh_stream, defs, TOPICS, serve=True)
    kept = touches(db, "session", "LONG")
    assert kept == [(f"Q{i:02d}", "view") for i in range(24, 4, -1)]  # the newest 20
    assert touches(db, "session", "OLD") is None  # older than the session bound: expired
    assert touches(db, "customer", "C2") == [("Q00", "view")]  # the customer's bound is longer

    # A later batch ages out what an earlier one kept, in rows it does not touch.
    produce_events(fresh_stream, [view("LATER", "Q99", T0 + timedelta(hours=2, minutes=1))])
    catch_up(fresh_stream, defs, TOPICS, serve=True)
    assert touches(db, "session", "LONG") is None
    assert touches(db, "session", "LATER") == [("Q99", "view")]


@pytest.mark.parametrize("session_id", ["x" * 65, "a\x00b", ""])
def test_a_malformed_session_id_is_a_422_in_the_error_body(client, session_id):
    response = client.get("/customers/C1/recommendations", params={"session_id": session_id})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"] and body["errors"][0]["loc"] == ["query", "session_id"]
