"""The FastAPI app: routes mounted from api/routes, errors mapped in api/errors, the service on app.state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from api.assemble import build_service
from api.errors import install_error_handlers
from api.routes import browse, ops, pages, qa
from api.settings import Settings
from data.errors import SpeechQAError
from qa.service import AnswerService

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, service: AnswerService | None = None) -> FastAPI:
    """The app for ``settings``; tests pass a ready ``service`` (otherwise it is loaded in the lifespan)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service
        app.state.load_error = None
        if service is None:
            try:
                app.state.service = await run_in_threadpool(build_service, settings)
                log.info("index %s loaded", app.state.service.index_version)
            except SpeechQAError as exc:
                # Stay up so /healthz answers and /readyz says why; requests get a 503 with the cause.
                log.error("service not ready: %s", exc)
                app.state.load_error = exc
        yield
        app.state.service = None

    app = FastAPI(
        title="speechqa",
        version="0.2.0",
        description="Questions over Chinese government speeches, answered with citations to the exact sentence.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.load_error = None
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    install_error_handlers(app)
    for router in (ops.router, qa.router, browse.router, pages.router):
        app.include_router(router)
    return app


__all__ = ["create_app"]
