"""The serving API: product search, recommendations, propensity and live metrics over `serving.*`.

`create_app(settings)` builds the FastAPI app; `pulsemart serve` runs it under uvicorn, one
process per worker. Routes are async over psycopg_pool's AsyncConnectionPool and send orjson
bytes; the read routes answer from a response cache while the data has not changed (see
cache.py for its staleness bound). Every route but `/health` (and what holds no data: the
OpenAPI description at `/openapi.json`, `/docs` and `/redoc` with their assets, the dashboard
page and its script, the dbt docs site) needs the header `X-API-Key` equal to
`PULSEMART_API_KEY`: 401 without it, 403 with another. Without a configured key the app
refuses to start unless told `insecure_no_auth`. Every status a route returns is in the OpenAPI
description, with the body `schema.Error`.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from pulsemart.config import Settings
from pulsemart.serving import schema
from pulsemart.serving.cache import (
    ANY_PRODUCT,
    CATALOG,
    ResponseCache,
    catalog_category_tag,
    category_tag,
    customer_tag,
    start_poller,
)
from pulsemart.serving.dashboard import install_dashboard
from pulsemart.serving.encode import json_body
from pulsemart.serving.exposures import (
    ExposureLog,
    exposure_part,
    new_recommendation_id,
    start_exposure_log,
    with_recommendation_id,
)
from pulsemart.serving.fragments import ITEM, PRODUCT, Composer, composer, refresh_rows
from pulsemart.serving.personal import answer_tags, personal_recommendations, similar_products
from pulsemart.serving.pool import make_pool, own_connection
from pulsemart.serving.queries import (
    SearchFilters,
    customer_propensity,
    realtime_metrics,
    search_products,
)
from pulsemart.serving.reference import install_reference

# PostgreSQL text cannot hold NUL: such a parameter is refused as invalid (422) up front rather
# than failing in the driver as a 500. A customer, session or product id is one path segment:
# no "/".
NO_NUL = r"^[^\x00]*$"
ID_SEGMENT = r"^[^\x00/]+$"
HEALTH_TIMEOUT_S = 2.0
POLLER_JOIN_S = 5.0
EXPOSURES_CLOSE_S = 5.0  # the exposure log's last send on shutdown waits at most this
# Whether a read route's answer came from the response cache: for operators and load tests.
# `stale`: the cache's change log was read longer ago than its bound (or the cache is off), so
# the answer was read and not kept; `miss`: read, and kept unless a change raced with it;
# `bypass`: an answer never kept (one that holds a shadow experiment's list, see personal.py).
CACHE_HIT, CACHE_MISS, CACHE_STALE, CACHE_BYPASS = (
    {"X-Cache": v} for v in ("hit", "miss", "stale", "bypass")
)
SESSION_QUERY = Query(
    min_length=1,
    max_length=64,
    pattern=ID_SEGMENT,
    description="The shopper's current session: its products steer the blend.",
)


class ServingConfigError(RuntimeError):
    """The API cannot start as configured; the message says what to set."""


_API_KEY = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Equal to the server's PULSEMART_API_KEY."
)


# Dependencies are `async def`: FastAPI runs a plain `def` one on its thread pool, and that
# hand-off per request was the largest single cost under load (py-spy; docs/serving.md).
def _authorizer(expected: str | None):
    async def authorize(key: Annotated[str | None, Depends(_API_KEY)]) -> None:
        if expected is None:
            return
        if not key:
            raise HTTPException(
                401, "missing X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"}
            )
        if not hmac.compare_digest(key.encode(), expected.encode()):
            raise HTTPException(403, "invalid API key")

    return authorize


async def reject_unknown_query(request: Request) -> None:
    """A query parameter the route does not document is a 422, not silently ignored: a typo
    such as `price_mx` would otherwise return unfiltered results."""
    documented = {param.alias for param in request.scope["route"].dependant.query_params}
    unknown = sorted(set(request.query_params) - documented)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": "unknown query parameter",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ]
        )


def json_response(body: bytes, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _install_errors(app: FastAPI) -> None:
    """Every error in the one body `schema.Error`."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return json_response(
            json_body({"detail": str(exc.detail), "errors": []}),
            exc.status_code,
            getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        fields = ", ".join(str(e["loc"][-1]) for e in errors)
        return json_response(
            json_body({"detail": f"invalid parameter: {fields}", "errors": errors}), 422
        )

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def unavailable(request: Request, exc: Exception) -> Response:
        return json_response(
            json_body({"detail": f"database unavailable: {type(exc).__name__}", "errors": []}), 503
        )


def create_app(
    settings: Settings,
    insecure_no_auth: bool = False,
    pool=None,
    cache: ResponseCache | None = None,
) -> FastAPI:
    """The app; `pool` (an AsyncConnectionPool by default) is opened and closed with it, and
    so is the process's exposure log (exposures.py) when PULSEMART_EXPOSURES is on."""
    if not settings.api_key and not insecure_no_auth:
        raise ServingConfigError(
            "PULSEMART_API_KEY is not set: set it, or start with --insecure-no-auth "
            "to serve without authentication (development only)"
        )
    pool = pool or make_pool(settings)
    cache = ResponseCache() if cache is None else cache  # an empty cache is falsy (len 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await pool.open(wait=False)
        poller, stop = start_poller(cache, own_connection(settings), refresh=refresh_rows)
        app.state.exposures = await asyncio.to_thread(start_exposure_log, settings)
        try:
            yield
        finally:
            if app.state.exposures is not None:
                await asyncio.to_thread(app.state.exposures.close, EXPOSURES_CLOSE_S)
            stop.set()
            # A round in flight ends with its statement (or its connect_timeout); the thread
            # is a daemon, so a database that hangs cannot hold the process past this.
            await asyncio.to_thread(poller.join, POLLER_JOIN_S)
            await pool.close()

    # FastAPI's /docs and /redoc load their scripts from a CDN: install_reference serves them
    # from the package instead, so they render without internet.
    app = FastAPI(
        title="pulsemart serving API",
        version="2",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Real-time product search, recommendations, purchase propensity and "
        "metrics over `serving.*`. Errors: one body, `Error`.",
    )
    app.state.pool, app.state.cache = pool, cache
    app.state.exposures = None  # an ExposureLog while the app runs, when exposures are on
    _install_errors(app)
    install_reference(app)
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    secured = [Depends(_authorizer(api_key)), Depends(reject_unknown_query)]

    def errors(*statuses: int) -> dict:
        """The error responses of a secured route: 401 and 403 too when a key is required."""
        return schema.error_responses(*((401, 403) if settings.api_key else ()), *statuses, 503)

    async def answer(
        key: tuple,
        read,
        tags,
        compose: Composer | None = None,
        aside: str | None = None,
        companion: tuple[tuple, Callable[[dict], bytes]] | None = None,
    ) -> tuple[bytes, dict[str, str], Any, bytes | None]:
        """The answer to `key` from the cache, or `read` from the database and kept until a
        change names one of its tags (cache.py): `tags`, or `tags(answer)`. With `compose`,
        the answer's shape is kept apart from the product rows it shows (fragments.py), and
        `tags` are those of its shape. With `aside`, that member of the answer is taken out
        and returned on its own, and an answer that had one is not kept. With `companion`
        (a key and a function of the answer), those bytes are kept beside it, with its tags.
        Returns the body, the X-Cache header, the member set aside and the companion's bytes
        (None when absent; a hit may find the companion evicted)."""
        body = cache.get(key)
        if body is not None:
            return body, CACHE_HIT, None, cache.get(companion[0]) if companion else None
        token = cache.begin()
        async with pool.connection() as conn:
            content = await read(conn)
        put_aside = content.pop(aside, None) if aside else None
        body = json_body(content)
        extra = companion[1](content) if companion else None
        if put_aside is not None:
            return body, CACHE_BYPASS, put_aside, extra
        if token is not None:
            kept, rows = compose(content, body) if compose else (body, [])
            tags = tags(content) if callable(tags) else tags
            beside = [(companion[0], extra, tags)] if companion and extra is not None else []
            cache.put_many(token, [(key, kept, tags), *beside, *rows])
        return body, CACHE_MISS if token is not None else CACHE_STALE, None, extra

    async def cached(key: tuple, read, tags, compose: Composer | None = None) -> Response:
        body, headers, _, _ = await answer(key, read, tags, compose)
        return json_response(body, headers=headers)

    async def exposed(route: str, key: tuple, read) -> Response:
        """A recommendations answer with an id of its own, whether cached or not, and its
        exposure handed to the log (which never makes the response wait), with the shadow
        challenger's list when the shopper is in a shadow experiment's buckets. What the
        exposure needs of the answer is kept beside it in the cache (`exposure_part`), so a
        hit does not parse the whole body again."""
        exposures: ExposureLog | None = app.state.exposures
        companion = (("exposure", *key), exposure_part) if exposures is not None else None
        body, headers, shadow, part = await answer(
            key, read, answer_tags, composer(ITEM), aside="shadow", companion=companion
        )
        recommendation_id = new_recommendation_id()
        if exposures is not None:
            exposures.offer(recommendation_id, route, part or body, shadow)
        return json_response(with_recommendation_id(body, recommendation_id), headers=headers)

    @app.get(
        "/health",
        tags=["ops"],
        response_model=schema.Health,
        dependencies=[Depends(reject_unknown_query)],
        responses=schema.error_responses(422, 503),
    )
    async def health() -> Response:
        """200 when the database answers; no key needed."""
        async with pool.connection(timeout=HEALTH_TIMEOUT_S) as conn:
            await conn.execute("select 1")
        return json_response(b'{"status":"ok"}')

    @app.get(
        "/products/search",
        tags=["products"],
        dependencies=secured,
        response_model=schema.SearchResult,
        responses=errors(422),
    )
    async def search(
        q: Annotated[
            str | None,
            Query(
                max_length=200,
                pattern=NO_NUL,
                description="Text in the description, or a product id",
            ),
        ] = None,
        category: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
        price_min: Annotated[
            float | None,
            Query(
                ge=0,
                description=(
                    "Lowest unit price. Above `price_max`, nothing matches: an empty result."
                ),
            ),
        ] = None,
        price_max: Annotated[float | None, Query(gt=0)] = None,
        available: bool | None = None,
        customizable: bool | None = None,
        sort: Literal["price", "-price", "popularity"] = "popularity",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> Response:
        filters = SearchFilters(
            q or None, category or None, price_min, price_max, available, customizable, sort, limit
        )

        async def read(conn):
            items = await search_products(conn, filters)
            return {"count": len(items), "items": items}

        # Which products a search lists, in what order: by price, decided by the catalog's
        # attributes (of the category's products, before or after the fold, with one); by
        # popularity, by any change to a product (of the category). The rows are apart.
        category = filters.category
        if filters.sort == "popularity":
            tag = (category_tag(category) if category else None) or ANY_PRODUCT
        else:
            tag = (catalog_category_tag(category) if category else None) or CATALOG
        return await cached(("search", filters), read, (tag,), composer(PRODUCT))

    @app.get(
        "/customers/{customer_id}",
        tags=["customers"],
        dependencies=secured,
        response_model=schema.Customer,
        responses=errors(422),
    )
    async def customer(
        customer_id: Annotated[str, Path(min_length=1, max_length=64, pattern=ID_SEGMENT)],
    ) -> Response:
        """The deployed propensity model's score for this customer (null when it has none)."""
        return await cached(
            ("customer", customer_id),
            lambda conn: customer_propensity(conn, customer_id),
            (customer_tag(customer_id),),
        )

    weights = settings.blend_weights

    @app.get(
        "/customers/{customer_id}/recommendations",
        tags=["customers"],
        dependencies=secured,
        response_model=schema.Recommendations,
        responses=errors(422),
    )
    async def recommendations(
        customer_id: Annotated[str, Path(min_length=1, max_length=64, pattern=ID_SEGMENT)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        session_id: Annotated[str | None, SESSION_QUERY] = None,
    ) -> Response:
        """The blend of the deployed model's scores, neighbours of the session's and the
        customer's recent products, and trending products (docs/serving.md)."""
        return await exposed(
            "customer",
            ("recommendations", customer_id, session_id, k),
            lambda conn: personal_recommendations(conn, customer_id, session_id, k, weights),
        )

    @app.get(
        "/sessions/{session_id}/recommendations",
        tags=["sessions"],
        dependencies=secured,
        response_model=schema.Recommendations,
        responses=errors(422),
    )
    async def session_recommendations(
        session_id: Annotated[str, Path(min_length=1, max_length=64, pattern=ID_SEGMENT)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Response:
        """The blend for an anonymous shopper: neighbours of the session's products, then
        trending."""
        return await exposed(
            "session",
            ("session", session_id, k),
            lambda conn: personal_recommendations(conn, None, session_id, k, weights),
        )

    @app.get(
        "/products/{product_id}/similar",
        tags=["products"],
        dependencies=secured,
        response_model=schema.SimilarProducts,
        responses=errors(422),
    )
    async def similar(
        product_id: Annotated[str, Path(min_length=1, max_length=64, pattern=ID_SEGMENT)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Response:
        """The deployed recommender's neighbours of this product that are available now."""
        return await cached(
            ("similar", product_id, k),
            lambda conn: similar_products(conn, product_id, k),
            (CATALOG,),
            composer(ITEM),
        )

    @app.get(
        "/metrics/realtime",
        tags=["ops"],
        dependencies=secured,
        response_model=schema.RealtimeMetrics,
        responses=errors(422),
    )
    async def metrics() -> Response:
        """Live figures: never cached."""
        async with pool.connection() as conn:
            return json_response(json_body(await realtime_metrics(conn)))

    # /dashboard (page; its data at /dashboard/data needs the key) and the dbt docs at
    # /datamart/docs/ (no data, served without the key): see docs/dashboard.md.
    install_dashboard(app, settings, secured, errors(422))
    return app
