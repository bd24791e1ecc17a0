"""The serving API keeps its OpenAPI description: schemathesis generates requests from
`/openapi.json` (valid and invalid, with and without the key) against `pulsemart serve` on a
real database, and fails on any status the description does not document, any body outside its
schema, and any 5xx. Bounded and derandomized: the same examples every run."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from psycopg import sql

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.stream.simulator import generate
from tests.conftest import reset_stream
from tests.integration.helpers import produce_simulated, start_serve

pytestmark = pytest.mark.integration
KEY = "openapi-key"
MODELS = {"pulsemart-recommender": "test-1", "pulsemart-propensity": "test-1"}


def seed_served_models(db, customer_id: str, product_id: str) -> None:
    """A deployed recommender and propensity version with scores for one customer, so the
    model-sourced bodies are checked too."""
    for name, version in MODELS.items():
        db.execute(
            "insert into serving.model_deployments (model_name, model_version, deployed_by) "
            "values (%s, %s, 'test_openapi') on conflict (model_name) do update set "
            "model_version = excluded.model_version",
            (name, version),
        )
    db.execute(
        "insert into serving.recommendations (model_name, model_version, customer_key, product_id, "
        "rank, score) values ('pulsemart-recommender', 'test-1', governance.keyed_hash(%s), %s, 1, 0.9)",
        (customer_id, product_id),
    )
    db.execute(
        "insert into serving.propensity_scores (model_name, model_version, customer_key, score) "
        "values ('pulsemart-propensity', 'test-1', governance.keyed_hash(%s), 0.42)",
        (customer_id,),
    )
    db.commit()


def remove_served_models(db) -> None:
    """Other tests expect no deployed model (the trending sources)."""
    db.rollback()
    for table in ("model_deployments", "recommendations", "propensity_scores"):
        db.execute(
            sql.SQL("delete from serving.{} where model_version = 'test-1'").format(
                sql.Identifier(table)
            )
        )
    db.commit()


@pytest.fixture(scope="module")
def served(settings):
    """`pulsemart serve` (one worker) over 800 simulated events and two seeded model versions."""
    import psycopg

    from pulsemart.store.db import database_url

    # Topics and store of its own: a module before this one on the same worker may have
    # recreated the topics under the offsets it stored.
    reset_stream(settings)
    events = list(generate(800, seed=71))
    produce_simulated(settings, events)
    catch_up(settings, defs, ["shop.catalog", "shop.events"], serve=True)
    with psycopg.connect(database_url(settings)) as db:
        customer = db.execute(
            "select customer_id from serving.customer_profile order by views desc, "
            "customer_id limit 1"
        ).fetchone()[0]
        product = db.execute(
            "select product_id from serving.product_state where unit_price > 0 "
            "order by product_id limit 1"
        ).fetchone()[0]
        seed_served_models(db, customer, product)
        server, base = start_serve(KEY)
        try:
            yield base, customer
        finally:
            server.terminate()
            server.wait(timeout=10)
            remove_served_models(db)


def description() -> dict:
    """The app's OpenAPI description, built without a database (the running server's must be
    the same: see the last test). Schemathesis needs it when pytest collects, before any
    fixture starts the server."""
    from pulsemart.config import load_settings
    from pulsemart.serving.api import create_app

    settings = load_settings({"PULSEMART_HOME": "/nonexistent", "PULSEMART_API_KEY": KEY})
    return create_app(settings).openapi()


schema = schemathesis.openapi.from_dict(description())


@schema.parametrize()
@hypothesis_settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_route_keeps_its_description(case, served):
    base, _ = served
    if case.headers and "X-API-Key" in case.headers:  # a generated key: use the real one; cases
        case.headers["X-API-Key"] = (
            KEY  # without the header check the 401 (and ignored_auth the 403)
        )
    case.call_and_validate(base_url=base, timeout=10)


@pytest.mark.parametrize(
    "path", ["/customers/{customer_id}", "/customers/{customer_id}/recommendations"]
)
def test_model_sourced_bodies_keep_their_schema(served, path):
    base, customer = served
    case = schema[path]["GET"].Case(path_parameters={"customer_id": customer})
    response = case.call_and_validate(base_url=base, headers={"X-API-Key": KEY}, timeout=10)
    body = response.json()
    assert (
        body.get("source", "model") == "model"
        and body.get("propensity", {"score": 1})["score"] >= 0
    )
    assert "test-1" in response.text


def test_the_server_serves_the_description_tested(served):
    base, _ = served
    assert httpx.get(f"{base}/openapi.json", timeout=10).json() == description()
