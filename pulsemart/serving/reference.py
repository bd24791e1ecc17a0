"""The API reference: Swagger UI at /docs and ReDoc at /redoc, over `/openapi.json`.

FastAPI's own pages load their scripts, styles and favicon from a CDN and render nothing on a
machine without internet. These are the same pages with those files served by the API itself,
from the fastapi-offline package (under /docs/static). Each page may also load nothing but what
the API serves (its content security policy): ReDoc's sidebar would otherwise fetch its
vendor's logo from a CDN, and Swagger UI its validator badge from another site. Like the
OpenAPI description, the pages hold no data and need no key.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS_PATH = "/docs/static"
# Both pages start with an inline script, and ReDoc styles itself inline and searches in a worker.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = PAGE_POLICY
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


def install_reference(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets to `app`, which must be built with `docs_url=None`
    and `redoc_url=None` (FastAPI's CDN pages)."""
    app.mount(
        ASSETS_PATH, StaticFiles(packages=[("fastapi_offline", "static")]), name="reference-assets"
    )

    def urls(request: Request) -> tuple[str, str]:
        """The OpenAPI description's and the assets' URLs, under the prefix a proxy serves us at."""
        root = request.scope.get("root_path", "")
        return f"{root}{app.openapi_url}", f"{root}{ASSETS_PATH}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi, assets = urls(request)
        return _confined(
            get_swagger_ui_html(
                openapi_url=openapi,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                swagger_css_url=f"{assets}/swagger-ui.css",
                swagger_favicon_url=f"{assets}/favicon.png",
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        openapi, assets = urls(request)
        return _confined(
            get_redoc_html(
                openapi_url=openapi,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{assets}/redoc.standalone.js",
                redoc_favicon_url=f"{assets}/favicon.png",
                with_google_fonts=False,
            )
        )
