"""The web app's files (one page, its script and its style) and the security headers every
response carries.

The page loads its script and style from this origin only, so the Content-Security-Policy can
forbid inline script: an injected `<script>` or `onclick=` never runs.  The API's own
responses get the same headers; `/docs` (Swagger UI loads from a CDN) is left out of the CSP.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from importlib import resources

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse

from zhijin.chain.errors import NotFound

__all__ = ["install_web"]

ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
UNCONSTRAINED_PATHS = ("/docs", "/redoc")


@functools.cache
def _read(name: str) -> str:
    # The files ship inside the package and never change while the process runs.
    return resources.files("zhijin.platform").joinpath(f"web/{name}").read_text("utf-8")


def install_web(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith(UNCONSTRAINED_PATHS):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(_read("index.html"), headers={"Cache-Control": "no-cache"})

    @app.api_route("/web/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    def asset(name: str) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound("not_found", f"no web asset {name}")
        return Response(_read(name), media_type=media_type, headers={"Cache-Control": "no-cache"})
