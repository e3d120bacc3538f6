"""The web shell: who looks at a page, in which language and text size, the navigation their
permissions give them, and the Jinja2 templates every page renders through.

Pages are server-rendered (Jinja2); htmx swaps parts of them after a form is sent, and Apache
ECharts draws charts, both served from our own origin (zhijin/platform/assets.py) under the
strict CSP of web_app.py.  A domain brings its pages through its manifest (`pages`,
`web_routers`, `templates`: docs/web.md); a page route guards itself with its own `NavEntry`:

    @router.get("/money")
    def money(request: Request, viewer: Annotated[ShellViewer, page_access(MONEY)]) -> Response:
        return render(request, "payments/home.html", title="page.money", accounts=...)

Who the viewer is comes from identity, through `app.state.viewer_resolver` (the composition
root sets it): the plumbing never imports a domain.  Every text goes through the "web" gettext
catalog (`_("msgid", name=value)` in templates: str.format params, the same rule as
`i18n.gettext`); amounts through `money(amount_minor, currency)`, times through `when(ms)`.

State-changing requests from pages are htmx requests: shell.js copies the session's CSRF
token (the `csrf-token` meta tag, rendered from the viewer) into `X-CSRF-Token`, which
identity checks as it does for the API; `same_origin` refuses a cross-site sender first.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from zhijin.chain.errors import ZhijinError
from zhijin.platform import assets, i18n
from zhijin.platform.module import NavEntry
from zhijin.platform.problems import template_params

__all__ = [
    "ANONYMOUS",
    "TEXT_COOKIE",
    "CrossSiteRefused",
    "PageForbidden",
    "Shell",
    "ShellViewer",
    "SignInRequired",
    "ViewerDep",
    "htmx_redirect",
    "is_htmx",
    "local_path",
    "page_access",
    "problem_text",
    "render",
    "same_origin",
    "shell_of",
    "text_size",
    "viewer_of",
    "web_msgid",
    "web_text",
]

log = logging.getLogger("zhijin.web")

TEXT_COOKIE = "zhijin_text"  # "large": the 适老化 mode (large text, high contrast)
TEXT_SIZES = ("normal", "large")
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
PREF_COOKIE_MAX_AGE_S = 400 * 24 * 3600  # the longest browsers keep a cookie


@dataclass(frozen=True, slots=True)
class ShellViewer:
    """Who looks at a page.  `principal` is identity's, opaque here (domain pages use it);
    `csrf_token` is the session's, for the page's htmx requests."""

    user_id: str | None = None
    login: str | None = None
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    did: str | None = None
    totp_enabled: bool = False
    staff: bool = False
    csrf_token: str | None = field(default=None, repr=False)
    principal: Any = field(default=None, compare=False, repr=False)

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None


ANONYMOUS = ShellViewer()
ViewerResolver = Callable[[Request], ShellViewer]


class SignInRequired(ZhijinError):
    """A page for signed-in users, asked for by someone who is not: sent to sign in."""

    code = "session_invalid"
    http_status = 401


class PageForbidden(ZhijinError):
    """A page the viewer's permissions do not admit: the translated 403 page."""

    code = "page_forbidden"
    http_status = 403


class CrossSiteRefused(ZhijinError):
    code = "cross_site_request"
    http_status = 403


def viewer_of(request: Request) -> ShellViewer:
    """The viewer of this request (resolved once per request)."""
    cached = getattr(request.state, "shell_viewer", None)
    if isinstance(cached, ShellViewer):
        return cached
    resolver: ViewerResolver | None = getattr(request.app.state, "viewer_resolver", None)
    viewer = ANONYMOUS if resolver is None else resolver(request)
    request.state.shell_viewer = viewer
    return viewer


ViewerDep = Annotated[ShellViewer, Depends(viewer_of)]


def page_access(entry: NavEntry) -> Any:
    """The dependency a page route declares: the viewer, if `entry.audience` admits them;
    otherwise sign in first (not signed in) or the 403 page (signed in, not admitted)."""

    def guard(request: Request) -> ShellViewer:
        viewer = viewer_of(request)
        if not entry.audience.admits(viewer):
            if not viewer.signed_in and entry.audience.kind != "signed_out":
                raise SignInRequired(message="sign in first", next=request.url.path)
            raise PageForbidden(message=f"{entry.path} is not for this user", page=entry.path)
        return viewer

    return Depends(guard)


def text_size(request: Request) -> str:
    size = request.cookies.get(TEXT_COOKIE)
    return size if size in TEXT_SIZES else "normal"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def same_origin(request: Request) -> None:
    """Refuse a state-changing page request sent from another site.  Browsers say where a
    request comes from (Sec-Fetch-Site, else Origin); a request that says neither is not a
    browser's and carries no cookie it did not choose to send."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise CrossSiteRefused(message="this form must be sent from this site's pages")
        return
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        raise CrossSiteRefused(message="this form must be sent from this site's pages")


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site (no scheme, no host, no `//`), else `default`:
    a `next=` parameter must never send a user to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def htmx_redirect(request: Request, to: str) -> Response:
    """Go to `to`: an `HX-Redirect` for htmx (a full page load), a 303 otherwise."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": to})
    return Response(status_code=303, headers={"Location": to})


def web_msgid(msgid: str) -> str:
    """Mark a "web" msgid where it is defined (a dict of labels) for `make catalogs`; a
    template translates it where it is shown, `_(label)`."""
    return msgid


def web_text(locale: str, msgid: str, /, **params: object) -> str:
    """A "web" catalog text for a page's Python code (`make catalogs` extracts its calls)."""
    return i18n.gettext(locale, msgid, domain="web", **params)


def problem_text(locale: str, exc: ZhijinError) -> str:
    """A domain error as the user reads it: its "messages" catalog entry `problem.<code>`
    (with its details as params), else its own message."""
    msgid = "problem." + exc.code
    if i18n.has_message(locale, msgid):
        try:
            # The details with their forms for people (money, a status in words), as the
            # API's problem detail has them.
            return i18n.render(locale, msgid, template_params(locale, exc.details))
        except (KeyError, IndexError, ValueError):
            log.warning("problem template params", extra={"code": exc.code})
    return exc.message


class Shell:
    """The Jinja2 environments (one per locale, each with its catalog installed) over the
    shell's templates and every module's, and the pages of the navigation."""

    def __init__(self, *, pages: Sequence[NavEntry], template_packages: Sequence[str]) -> None:
        self.pages = tuple(sorted(pages, key=lambda page: page.order))
        loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("zhijin.platform.web")]
        loaders += [jinja2.PackageLoader(package) for package in template_packages]
        self._loader = jinja2.ChoiceLoader(loaders)

    @functools.cache  # noqa: B019 - one Shell per app, living as long as it
    def environment(self, locale: str) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=self._loader,
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )

        def translate(msgid: str, **params: object) -> str:
            return i18n.gettext(locale, msgid, domain="web", **params)

        def ntranslate(singular: str, plural: str, n: int, **params: object) -> str:
            return translate(singular if n == 1 else plural, n=n, **params)

        # Old-style callables: `_("msgid", name=value)` formats with str.format, as the core's
        # gettext does, and autoescaping escapes the whole result (params included).
        env.install_gettext_callables(translate, ntranslate, newstyle=False)  # type: ignore[attr-defined]
        env.globals.update(
            money=lambda amount_minor, currency: i18n.format_money(
                int(amount_minor), currency, locale
            ),
            when=lambda moment: i18n.format_datetime(moment, locale),
            shell_url=assets.shell_url,
            vendor_url=assets.vendor_url,
            locale=locale,
            html_lang=HTML_LANG[locale],
            locales=i18n.LOCALES,
        )
        return env

    def nav(self, viewer: ShellViewer, current_path: str) -> list[dict[str, Any]]:
        shown = [page for page in self.pages if page.in_nav and page.audience.admits(viewer)]
        # The current entry is the longest path the page is under: on /staff/kyc, the KYC
        # queue, not the staff home above it.
        under = [
            page.path
            for page in shown
            if current_path == page.path or current_path.startswith(page.path.rstrip("/") + "/")
        ]
        current = max(under, key=len, default=None)
        return [
            {"path": page.path, "label": page.label, "current": page.path == current}
            for page in shown
        ]

    def home_of(self, viewer: ShellViewer) -> str | None:
        """The path `/` leads this viewer to: the first home page that admits them."""
        for page in self.pages:
            if page.home and page.audience.admits(viewer):
                return page.path
        return None


def shell_of(request: Request) -> Shell:
    shell: Shell = request.app.state.shell
    return shell


def render(
    request: Request,
    template: str,
    *,
    title: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page (or, for htmx, whatever part `template` is) in the viewer's language.
    `title` is the msgid of the page's title."""
    shell = shell_of(request)
    locale = i18n.request_locale(request)
    viewer = viewer_of(request)
    size = text_size(request)
    env = shell.environment(locale)
    html = env.get_template(template).render(
        request=request,
        viewer=viewer,
        nav=shell.nav(viewer, request.url.path),
        title=title,
        large=size == "large",
        text_size=size,
        current_path=request.url.path,
        current_url=str(request.url.path)
        + (("?" + request.url.query) if request.url.query else ""),
        **context,
    )
    merged = {"Cache-Control": "no-store", "Vary": "Cookie, Accept-Language, HX-Request"}
    merged.update(headers or {})
    return HTMLResponse(html, status_code=status_code, headers=merged)
