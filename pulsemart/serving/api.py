"""The serving API: product search, recommendations and live metrics over `serving.*`.

`create_app(settings)` builds the FastAPI app; `pulsemart serve` runs it under uvicorn. Every
route but `/health` (and what holds no data: the OpenAPI description at `/docs`,
`/openapi.json`, the dashboard page and its script, the dbt docs site) needs the header
`X-API-Key` equal to `PULSEMART_API_KEY`: 401 without it, 403 with another.
Without a configured key the app refuses to start unless told `insecure_no_auth`.
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query
from fastapi.security import APIKeyHeader

from pulsemart.config import Settings
from pulsemart.serving.dashboard import install_dashboard
from pulsemart.serving.pool import ConnectionPool
from pulsemart.serving.queries import SearchFilters, realtime_metrics, recommend, search_products

# PostgreSQL text cannot hold NUL: such a parameter is refused as invalid (422) up front rather
# than failing in the driver as a 500.
NO_NUL = r"^[^\x00]*$"


class ServingConfigError(RuntimeError):
    """The API cannot start as configured; the message says what to set."""


_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="Equal to the server's PULSEMART_API_KEY.")


def _authorizer(expected: str | None):
    def authorize(key: Annotated[str | None, Depends(_API_KEY)]) -> None:
        if expected is None:
            return
        if not key:
            raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"})
        if not hmac.compare_digest(key.encode(), expected.encode()):
            raise HTTPException(403, "invalid API key")
    return authorize


def create_app(settings: Settings, insecure_no_auth: bool = False, pool: ConnectionPool | None = None) -> FastAPI:
    if not settings.api_key and not insecure_no_auth:
        raise ServingConfigError("PULSEMART_API_KEY is not set: set it, or start with --insecure-no-auth "
                                 "to serve without authentication (development only)")
    pool = pool or ConnectionPool(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        pool.close()

    app = FastAPI(title="pulsemart serving API", version="1", lifespan=lifespan,
                  description="Real-time product search, recommendations and metrics over `serving.*`.")
    app.state.pool = pool
    secured = [Depends(_authorizer(settings.api_key))]

    @app.get("/health", tags=["ops"])
    def health() -> dict:
        try:
            with pool.connection() as conn:
                conn.execute("select 1")
        except Exception as exc:  # any failure means "not healthy"
            raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from exc
        return {"status": "ok"}

    @app.get("/products/search", tags=["products"], dependencies=secured)
    def search(
        q: Annotated[str | None, Query(max_length=200, pattern=NO_NUL,
                                       description="Text in the description, or a product id")] = None,
        category: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
        price_min: Annotated[float | None, Query(ge=0)] = None,
        price_max: Annotated[float | None, Query(gt=0)] = None,
        available: bool | None = None,
        customizable: bool | None = None,
        sort: Literal["price", "-price", "popularity"] = "popularity",
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict:
        if price_min is not None and price_max is not None and price_min > price_max:
            raise HTTPException(422, "price_min must not be greater than price_max")
        filters = SearchFilters(q or None, category or None, price_min, price_max, available, customizable,
                                sort, limit)
        with pool.connection() as conn:
            items = search_products(conn, filters)
        return {"count": len(items), "items": items}

    @app.get("/customers/{customer_id}/recommendations", tags=["customers"], dependencies=secured)
    def recommendations(
        customer_id: Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict:
        with pool.connection() as conn:
            return recommend(conn, customer_id, k)

    @app.get("/metrics/realtime", tags=["ops"], dependencies=secured)
    def metrics() -> dict:
        with pool.connection() as conn:
            return realtime_metrics(conn)

    # /dashboard (page; its data at /dashboard/data needs the key) and the dbt docs at
    # /datamart/docs/ (no data, served without the key): see docs/dashboard.md.
    install_dashboard(app, settings, secured)
    return app
