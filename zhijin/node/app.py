"""The app factory: no import-time side effects; the node starts in the app's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from zhijin import __version__
from zhijin.identity.guard import ReadPolicy
from zhijin.node.modules import (
    default_party_finders,
    default_projection_verifiers,
    install_permissions,
    nav_entries,
    routers,
    template_packages,
    web_routers,
)
from zhijin.node.runtime import Platform
from zhijin.node.settings import CoreSettings, Settings
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.host import Host
from zhijin.platform.http_edge import EdgeRoute
from zhijin.platform.problems import install_problem_handlers
from zhijin.platform.web_app import install_web

__all__ = ["GRACEFUL_SHUTDOWN_S", "create_app", "include_edge_router", "serve"]

log = logging.getLogger("zhijin.app")

# What a server gives open requests to finish when it is stopped.  Live event streams never
# end on their own, so without a bound one open browser tab would keep Ctrl-C waiting.
GRACEFUL_SHUTDOWN_S = 3


def include_edge_router(app: FastAPI, router: APIRouter) -> None:
    """Include `router`, whose routes must all be EdgeRoutes: a route outside the edge would
    take unbounded bodies and duplicate JSON keys (zhijin/platform/http_edge.py)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and not isinstance(route, EdgeRoute):
            raise TypeError(f"{route.path} is not an EdgeRoute: build its router with route_class")
    app.include_router(router)


def create_app(
    settings: CoreSettings | None = None, *, platform: Platform | None = None
) -> FastAPI:
    """Build the app.  Pass `platform` to serve an already-open one (tests, embedding)."""
    settings = settings or (platform.settings if platform else Settings())
    install_permissions()  # the routes check what the modules of this app declare

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = platform is None
        running = Platform(settings) if owned else platform
        assert running is not None
        if owned:
            running.start()
        host: Host = running  # mypy: the root's host satisfies what the plumbing names
        app.state.platform = host
        app.state.gateway = MemberGateway(running.node)
        app.state.identity = running.identity
        app.state.guard = running.guard  # identity's request guard (identity/guard.py)
        # The plumbing's routes ask the root's state, not the root, what the modules provide:
        # the chain's read policy is identity's guard with every module's party finders.
        app.state.read_policy = ReadPolicy(running.guard, tuple(default_party_finders()))
        app.state.projection_verifiers = default_projection_verifiers()
        try:
            yield
        finally:
            if owned:
                running.stop()

    app = FastAPI(
        title="zhijin (智金)",
        version=__version__,
        description="Smart-finance services on a permissioned consortium blockchain.",
        lifespan=lifespan,
        # /docs is the web shell's own page (Swagger UI from our origin, web_app.py).
        docs_url=None,
        redoc_url=None,
    )
    app.router.route_class = EdgeRoute  # the app's own routes (health, web shell)
    install_problem_handlers(app)
    for router in routers():  # the chain's read API, then each domain's, in manifest order
        include_edge_router(app, router)
    # Routes over every domain's projections: live events (identity says who listens) and the
    # projection check.
    from zhijin.node.events_api import router as events_router
    from zhijin.platform.projections_api import router as projections_router

    include_edge_router(app, events_router)
    include_edge_router(app, projections_router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # The web app: each module's pages, the shell over them, and who the viewer is (identity
    # says; the plumbing cannot ask it itself).
    from zhijin.identity.web.pages import page_viewer

    for router in web_routers():
        include_edge_router(app, router)
    app.state.viewer_resolver = page_viewer
    install_web(app, pages=nav_entries(), template_packages=template_packages())
    return app


class _Server(uvicorn.Server):
    """Ends the live event streams as soon as a stop is asked for: they never end on their
    own, and uvicorn waits for open requests before it shuts the app down."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        platform = getattr(self.app.state, "platform", None)
        if platform is not None:
            platform.notifications.stop()
        super().handle_exit(sig, frame)


def serve(app: FastAPI, *, host: str, port: int, log_level: str) -> None:
    """Serve `app` until SIGINT/SIGTERM; open streams end first, and any request still open
    after GRACEFUL_SHUTDOWN_S is cut."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    _Server(config, app).run()
