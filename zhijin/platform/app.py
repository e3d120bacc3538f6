"""The app factory: no import-time side effects; the node starts in the app's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from zhijin import __version__
from zhijin.platform import chain_api
from zhijin.platform.gateway import MemberGateway
from zhijin.platform.problems import install_problem_handlers
from zhijin.platform.runtime import Platform
from zhijin.platform.settings import Settings
from zhijin.platform.web_app import install_web

__all__ = ["create_app"]

log = logging.getLogger("zhijin.app")


def create_app(settings: Settings | None = None, *, platform: Platform | None = None) -> FastAPI:
    """Build the app.  Pass `platform` to serve an already-open one (tests, embedding)."""
    settings = settings or (platform.settings if platform else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = platform is None
        running = Platform(settings) if owned else platform
        assert running is not None
        if owned:
            running.start()
        app.state.platform = running
        app.state.gateway = MemberGateway(running.node)
        app.state.identity = running.identity
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
    )
    install_problem_handlers(app)
    app.include_router(chain_api.router)
    from zhijin.notary.api import router as notary_router

    app.include_router(notary_router)
    from zhijin.identity.api import router as identity_router

    app.include_router(identity_router)
    from zhijin.payments.api import router as payments_router

    app.include_router(payments_router)
    from zhijin.platform.events_api import router as events_router

    app.include_router(events_router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    install_web(app)
    return app
