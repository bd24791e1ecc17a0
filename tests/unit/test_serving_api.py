"""The serving API's auth and validation, before any query reaches the database."""

from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pulsemart.config import load_settings
from pulsemart.serving.api import ServingConfigError, create_app
from pulsemart.serving.queries import SEARCH


class NoDatabase:
    """A pool whose every use fails the test: auth and validation must answer first."""

    @contextmanager
    def connection(self):
        raise AssertionError("the request reached the database")
        yield

    def close(self):
        pass


def settings(api_key):
    env = {"PULSEMART_HOME": str(Path("/nonexistent"))}
    if api_key:
        env["PULSEMART_API_KEY"] = api_key
    return load_settings(env)


@pytest.fixture
def client():
    return TestClient(create_app(settings("s3cret"), pool=NoDatabase()))


def test_no_key_configured_refuses_to_start_unless_told():
    with pytest.raises(ServingConfigError, match="--insecure-no-auth"):
        create_app(settings(None), pool=NoDatabase())
    create_app(settings(None), insecure_no_auth=True, pool=NoDatabase())


@pytest.mark.parametrize("path", ["/products/search", "/customers/C1/recommendations", "/metrics/realtime"])
def test_missing_key_is_401_and_a_wrong_key_403(client, path):
    missing = client.get(path)
    assert missing.status_code == 401 and missing.json()["detail"] == "missing X-API-Key header"
    assert client.get(path, headers={"X-API-Key": "guess"}).status_code == 403


@pytest.mark.parametrize("params, field", [
    ({"price_min": -1}, "price_min"),
    ({"price_max": 0}, "price_max"),
    ({"sort": "name"}, "sort"),
    ({"limit": 101}, "limit"),
    ({"available": "maybe"}, "available"),
    ({"q": "x" * 201}, "q"),
])
def test_invalid_search_parameters_are_422_naming_the_field(client, params, field):
    response = client.get("/products/search", params=params, headers={"X-API-Key": "s3cret"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-1] == field and error["msg"]


def test_price_min_above_price_max_is_422_with_a_message(client):
    response = client.get("/products/search", params={"price_min": 9, "price_max": 3},
                          headers={"X-API-Key": "s3cret"})
    assert response.status_code == 422
    assert response.json()["detail"] == "price_min must not be greater than price_max"


def test_recommendations_validate_k(client):
    for k in (0, 101, "ten"):
        response = client.get("/customers/C1/recommendations", params={"k": k}, headers={"X-API-Key": "s3cret"})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "k"


def test_health_needs_no_key_and_reports_an_unreachable_database():
    response = TestClient(create_app(settings("s3cret"), pool=NoDatabase())).get("/health")
    assert response.status_code == 503 and "database unavailable" in response.json()["detail"]


def test_openapi_documents_the_api_key_header(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert {"/health", "/products/search", "/customers/{customer_id}/recommendations",
            "/metrics/realtime"} <= set(schema["paths"])


def test_every_sort_the_api_accepts_has_a_search_statement(client):
    parameters = client.app.openapi()["paths"]["/products/search"]["get"]["parameters"]
    sort = next(p for p in parameters if p["name"] == "sort")
    assert set(sort["schema"]["enum"]) == set(SEARCH)
