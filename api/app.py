"""The FastAPI app: routes mounted from api/routes, errors mapped in api/errors, the service on app.state.

Middleware, outermost first: EdgeMiddleware (request id, security headers, HEAD, JSON 500, access log,
metrics) -> CORS (when SPEECHQA_CORS_ORIGINS is set) -> BodyLimitMiddleware (413/408 before parsing) -> routes.
Every /v1 route has the API-key dependency (which also counts the rate limit); ask and search take a work slot.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from api.assemble import build_service
from api.deps import ApiKey
from api.errors import install_error_handlers
from api.guard import Guard
from api.middleware import BodyLimitMiddleware, EdgeMiddleware
from api.observe import install_request_id_logging, observe_index
from api.routes import browse, docs, ops, pages, qa
from api.settings import Settings
from data.errors import SpeechQAError
from qa.service import AnswerService

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, service: AnswerService | None = None) -> FastAPI:
    """The app for ``settings``; tests pass a ready ``service`` (otherwise it is loaded in the lifespan)."""
    settings = settings or Settings()
    install_request_id_logging()

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
        if app.state.service is not None:
            svc = app.state.service
            observe_index(svc.index_version, len(svc.index.paragraphs))
        yield
        app.state.service = None

    app = FastAPI(
        title="speechqa",
        version="0.2.0",
        description="Questions over Chinese government speeches, answered with citations to the exact sentence.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.guard = Guard.from_settings(settings)
    app.state.service = service
    app.state.load_error = None
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(EdgeMiddleware)
    install_error_handlers(app)
    app.include_router(ops.router)
    for router in (qa.router, browse.router):
        app.include_router(router, dependencies=[ApiKey])
    app.include_router(pages.router)
    docs.mount_docs(app)
    return app


def create_app_from_env() -> FastAPI:
    """The app factory uvicorn's worker processes call (``speechqa serve --workers N``): settings from the
    environment, which the CLI filled in before starting them."""
    return create_app(Settings())


__all__ = ["create_app", "create_app_from_env"]
