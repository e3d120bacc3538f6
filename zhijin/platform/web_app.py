"""The web app's plumbing: the security headers every response carries, the static files
(allow-listed vendor packages and the shell's own), the remembered preferences (language,
large text), the offline API docs, `/` and the error pages of the shell.

Every response, `/docs` included, carries a Content-Security-Policy that forbids inline
script and inline style: an injected `<script>`, `onclick=` or `style=` never runs.  Pages
load their script and style from this origin only (zhijin/platform/assets.py), so the app,
the charts and the API docs work with no internet.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from zhijin.chain.errors import NotFound, ZhijinError
from zhijin.platform import assets, i18n
from zhijin.platform.module import NavEntry
from zhijin.platform.shell import (
    ANONYMOUS,
    PREF_COOKIE_MAX_AGE_S,
    TEXT_COOKIE,
    TEXT_SIZES,
    CrossSiteRefused,
    PageForbidden,
    Shell,
    SignInRequired,
    htmx_redirect,
    is_htmx,
    local_path,
    problem_text,
    render,
    same_origin,
    shell_of,
    viewer_of,
    web_msgid,
)

__all__ = ["CONTENT_SECURITY_POLICY", "install_web"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
NO_CACHE = "no-cache"
API_PREFIX = "/api/"


def install_web(
    app: FastAPI, *, pages: Sequence[NavEntry] = (), template_packages: Sequence[str] = ()
) -> None:
    """The shell over `pages` (every module's, from the root) and their templates."""
    app.state.shell = Shell(pages=pages, template_packages=template_packages)
    assets.check_assets()  # logged once at start; each page that needs one says so too
    _install_headers(app)
    _install_static(app)
    _install_pages(app)
    _install_errors(app)


def _install_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


def _install_static(app: FastAPI) -> None:
    @app.api_route(
        "/static/vendor/{package}/{path:path}", methods=["GET", "HEAD"], include_in_schema=False
    )
    def vendor(package: str, path: str) -> Response:
        found = assets.vendor_file(package, path)
        if found is None or not found.is_file():
            raise NotFound("not_found", f"no web asset {package}/{path}")
        return Response(
            found.read_bytes(),
            media_type=assets.media_type_of(path),
            headers={"Cache-Control": assets.IMMUTABLE_CACHE},
        )

    @app.api_route(
        "/static/shell/{digest}/{name}", methods=["GET", "HEAD"], include_in_schema=False
    )
    def shell_static(digest: str, name: str) -> Response:
        content = assets.shell_file(digest, name)
        if content is None:
            raise NotFound("not_found", f"no web asset {name}")
        return Response(
            content,
            media_type=assets.media_type_of(name),
            headers={"Cache-Control": assets.IMMUTABLE_CACHE},
        )


def _install_pages(app: FastAPI) -> None:
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def index(request: Request) -> Response:
        viewer = viewer_of(request)
        if not viewer.signed_in:
            return Response(status_code=303, headers={"Location": "/signin"})
        home = shell_of(request).home_of(viewer)
        if home is None:
            # Signed in, but no module offers a home to these roles: the shell's own page.
            return render(request, "shell/home.html", title=web_msgid("page.home"))
        return Response(status_code=303, headers={"Location": home, "Cache-Control": NO_CACHE})

    @app.post("/prefs", include_in_schema=False)
    def prefs(
        request: Request,
        lang: Annotated[str | None, Form(max_length=8)] = None,
        text: Annotated[str | None, Form(max_length=8)] = None,
        back: Annotated[str | None, Form(max_length=2048)] = None,
    ) -> Response:
        """The language and text-size switches (plain forms: they work without script),
        remembered in cookies the page reads on every request."""
        same_origin(request)
        response = htmx_redirect(request, local_path(back))
        secure = request.url.scheme == "https"
        if lang in i18n.LOCALES:
            response.set_cookie(
                i18n.LANG_COOKIE, lang, max_age=PREF_COOKIE_MAX_AGE_S, path="/",
                secure=secure, httponly=True, samesite="lax",
            )  # fmt: skip
        if text in TEXT_SIZES:
            response.set_cookie(
                TEXT_COOKIE, text, max_age=PREF_COOKIE_MAX_AGE_S, path="/",
                secure=secure, httponly=True, samesite="lax",
            )  # fmt: skip
        return response

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        """Swagger UI from our own origin (swagger-ui-dist, its init script a file)."""
        return render(
            request, "shell/docs.html", title=web_msgid("page.api_docs"), spec_url=app.openapi_url
        )


def _install_errors(app: FastAPI) -> None:
    api_problem = app.exception_handlers.get(ZhijinError)

    @app.exception_handler(ZhijinError)
    async def _page_problem(request: Request, exc: ZhijinError) -> Response:
        """A refusal on a page (a bad CSRF token, a block that is not there) is a page in the
        viewer's language, or for htmx the part that says it; the API keeps problem+json."""
        if request.url.path.startswith(API_PREFIX) and api_problem is not None:
            answer = api_problem(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        try:
            viewer_of(request)
        except ZhijinError:  # the viewer is what was refused (a bad CSRF token): show anyone's
            request.state.shell_viewer = ANONYMOUS
        template = "shell/_problem.html" if is_htmx(request) else "shell/problem.html"
        return render(
            request,
            template,
            title=web_msgid("page.problem"),
            status_code=exc.http_status,
            problem=problem_text(i18n.request_locale(request), exc),
        )

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = "/signin?next=" + local_path(str(exc.details.get("next", "/")))
        return htmx_redirect(request, target)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        return render(request, "shell/403.html", title=web_msgid("page.forbidden"), status_code=403)

    @app.exception_handler(CrossSiteRefused)
    async def _cross_site(request: Request, exc: CrossSiteRefused) -> Response:
        return PlainTextResponse(exc.message, status_code=403)

    @app.exception_handler(assets.AssetsMissing)
    async def _assets_missing(request: Request, exc: assets.AssetsMissing) -> Response:
        return PlainTextResponse(exc.message, status_code=503)
