"""The serving API's auth, validation and OpenAPI description, before any query reaches the
database."""

from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout

from pulsemart.config import load_settings
from pulsemart.serving.api import ServingConfigError, create_app
from pulsemart.serving.cache import ResponseCache
from pulsemart.serving.queries import SEARCH

SECURED = [
    "/products/search",
    "/customers/C1",
    "/customers/C1/recommendations",
    "/metrics/realtime",
    "/dashboard/data",
]


class NoDatabase:
    """A pool whose every use fails the test: auth and validation must answer first."""

    @asynccontextmanager
    async def connection(self, timeout=None):
        raise AssertionError("the request reached the database")
        yield

    async def open(self, wait=True):
        pass

    async def close(self):
        pass


class Unreachable(NoDatabase):
    """A pool whose database is down: every connection times out."""

    @asynccontextmanager
    async def connection(self, timeout=None):
        raise PoolTimeout("couldn't get a connection after 2.00 sec")
        yield


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


@pytest.mark.parametrize("path", SECURED)
def test_missing_key_is_401_and_a_wrong_key_403_in_the_one_error_body(client, path):
    missing = client.get(path)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "missing X-API-Key header", "errors": []}
    wrong = client.get(path, headers={"X-API-Key": "guess"})
    assert wrong.status_code == 403 and wrong.json() == {"detail": "invalid API key", "errors": []}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"price_min": -1}, "price_min"),
        ({"price_max": 0}, "price_max"),
        ({"sort": "name"}, "sort"),
        ({"limit": 101}, "limit"),
        ({"available": "maybe"}, "available"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
    ],
)
def test_invalid_search_parameters_are_422_naming_the_field(client, params, field):
    response = client.get("/products/search", params=params, headers={"X-API-Key": "s3cret"})
    assert response.status_code == 422
    body = response.json()
    [error] = body["errors"]
    assert error["loc"][-1] == field and error["msg"] and field in body["detail"]


@pytest.mark.parametrize("path", ["/customers/C1/recommendations", "/customers/C1"])
def test_customer_routes_validate_their_parameters(client, path):
    for params in ({"k": 0}, {"k": 101}, {"k": "ten"}) if path.endswith("recommendations") else ():
        response = client.get(path, params=params, headers={"X-API-Key": "s3cret"})
        assert response.status_code == 422 and response.json()["errors"][0]["loc"][-1] == "k"
    too_long = client.get(path.replace("C1", "C" * 65), headers={"X-API-Key": "s3cret"})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["loc"][-1] == "customer_id"
    nul = client.get(path.replace("C1", "C%001"), headers={"X-API-Key": "s3cret"})
    assert nul.status_code == 422


@pytest.mark.parametrize("path", SECURED)
def test_an_undocumented_query_parameter_is_422(client, path):
    response = client.get(path, params={"price_mx": 3}, headers={"X-API-Key": "s3cret"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["query", "price_mx"], "msg": "unknown query parameter", "type": "extra_forbidden"}
    ]


def test_health_needs_no_key_and_reports_an_unreachable_database():
    response = TestClient(create_app(settings("s3cret"), pool=Unreachable())).get("/health")
    assert response.status_code == 503
    assert response.json() == {"detail": "database unavailable: PoolTimeout", "errors": []}


def test_a_data_route_answers_503_when_the_database_is_unreachable():
    client = TestClient(create_app(settings("s3cret"), pool=Unreachable()))
    response = client.get("/products/search", headers={"X-API-Key": "s3cret"})
    assert response.status_code == 503 and response.json()["detail"].startswith(
        "database unavailable"
    )


def test_openapi_documents_every_status_with_the_one_error_body(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    paths = schema["paths"]
    assert {"/health", *(p.replace("C1", "{customer_id}") for p in SECURED)} <= set(paths)
    error = {"$ref": "#/components/schemas/Error"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path in SECURED:
        responses = paths[path.replace("C1", "{customer_id}")]["get"]["responses"]
        for status in ("401", "403", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == error, (
                path,
                status,
            )
        assert "422" in responses
    assert (
        paths["/health"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
        == error
    )
    assert "Above `price_max`, nothing matches" in str(
        paths["/products/search"]["get"]["parameters"]
    )


def test_without_a_key_no_route_documents_401_or_403():
    schema = (
        TestClient(create_app(settings(None), insecure_no_auth=True, pool=NoDatabase()))
        .get("/openapi.json")
        .json()
    )
    for operations in schema["paths"].values():
        assert not {"401", "403"} & set(operations["get"]["responses"])


def test_every_sort_the_api_accepts_has_a_search_statement(client):
    parameters = client.app.openapi()["paths"]["/products/search"]["get"]["parameters"]
    sort = next(p for p in parameters if p["name"] == "sort")
    assert set(sort["schema"]["enum"]) == set(SEARCH)


def test_the_cache_passed_in_is_the_one_used_even_while_empty():
    # An empty ResponseCache has len 0: `cache or default` would swap it for a default one,
    # and a caller's `max_staleness_s=0` (no caching) would silently cache for 0.25 s.
    off = ResponseCache(max_staleness_s=0)
    assert len(off) == 0
    app = create_app(settings("s3cret"), pool=NoDatabase(), cache=off)
    assert app.state.cache is off
