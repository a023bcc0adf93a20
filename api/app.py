"""The FastAPI app: routes mounted from api/routes, errors mapped in api/errors, the live service on app.state.

Middleware, outermost first: EdgeMiddleware (request id, security headers, HEAD, JSON 500, access log,
metrics) -> BalanceMiddleware (under ``serve --workers N``: moves a keep-alive connection off a worker busier
than the others) -> CORS (when SPEECHQA_CORS_ORIGINS is set) -> BodyLimitMiddleware (413/408 before parsing;
the admin upload streams with its own limits) -> routes. Every /v1 question route has the API-key dependency
(which also counts the rate limit); ask and search take a work slot; /v1/admin has the admin key.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from api.assemble import build_encoder, build_service, open_cache
from api.balance import BalanceMiddleware, ConnectionBalancer
from api.deps import ApiKey
from api.errors import install_error_handlers
from api.guard import Guard
from api.jobs import JobQueue
from api.knowledge import DirectoryWriter, KnowledgeBase
from api.live import ServiceHolder
from api.middleware import BodyLimitMiddleware, EdgeMiddleware
from api.observe import install_request_id_logging, observe_index
from api.routes import admin, browse, docs, ops, pages, qa
from api.settings import Settings
from api.uploads import UploadLimits
from data.errors import SpeechQAError
from embeddings.encoder import Encoder
from qa.batching import batched
from qa.service import AnswerService, serialized

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, service: AnswerService | None = None) -> FastAPI:
    """The app for ``settings``; tests pass a ready ``service`` (otherwise it is loaded in the lifespan).

    Either way a ``ServiceHolder`` serves it and swaps in each new version of its index directory."""
    settings = settings or Settings()
    index_dir = service.index.path if service is not None else settings.resolved_index_dir
    holder = ServiceHolder(index_dir, service=service, interval_s=settings.reload_interval_s)
    jobs = JobQueue()
    install_request_id_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        encoder: Encoder | None = service.encoder if service is not None else None
        if encoder is None:
            try:
                encoder = await run_in_threadpool(build_encoder, settings)
            except SpeechQAError as exc:
                # Stay up so /healthz answers and /readyz says why; requests get a 503 with the cause.
                log.error("service not ready: %s", exc)
                holder.set_error(exc)
        if encoder is not None:
            # One encoder for every index version and the ingest jobs; a torch one behind one lock (its
            # tokenizer is not thread-safe), the ONNX one without (qa.service.serialized). Questions waiting
            # for an answer slot are encoded in batches by the request ahead of them (qa.batching).
            encoder = batched(serialized(encoder))
            holder.loader = functools.partial(_load, settings, encoder=encoder, segments={})
            await run_in_threadpool(holder.refresh)
            app.state.knowledge = KnowledgeBase(
                index_dir,
                holder,
                DirectoryWriter(index_dir, encoder, functools.partial(open_cache, settings)),
                UploadLimits(
                    settings.upload_max_file_bytes,
                    settings.upload_max_request_bytes,
                    settings.upload_max_files,
                ),
                jobs,
            )
            jobs.start()
        if (current := holder.current()) is not None:
            observe_index(current.index_version, current.index.n_paragraphs)
        holder.start()
        if settings.balance_file is not None:
            # Claimed now that the worker can answer: its socket starts listening after the lifespan starts.
            try:
                app.state.balancer = ConnectionBalancer(settings.balance_file)
            except (OSError, ValueError) as exc:
                log.warning("connections will not be evened out between workers: %s", exc)
        yield
        if app.state.balancer is not None:
            app.state.balancer.close()
            app.state.balancer = None
        holder.stop()
        jobs.stop()

    app = FastAPI(
        title="speechqa",
        version="0.2.0",
        description="Questions over Chinese government speeches, answered with citations to the exact sentence.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.knowledge = None
    app.state.balancer = None
    app.state.guard = Guard.from_settings(settings)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        exempt=("/v1/admin/documents",),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(BalanceMiddleware, state=app.state)  # acts only under `serve --workers N`
    app.add_middleware(EdgeMiddleware)
    install_error_handlers(app)
    app.include_router(ops.router)
    for router in (qa.router, browse.router):
        app.include_router(router, dependencies=[ApiKey])
    app.include_router(pages.router)
    # Without an admin key the admin routes do not exist (404), so the API description does not list them.
    app.include_router(admin.router, include_in_schema=settings.admin_key is not None)
    docs.mount_docs(app)
    return app


def create_app_from_env() -> FastAPI:
    """The app factory uvicorn's worker processes call (``speechqa serve --workers N``): settings from the
    environment, which the CLI filled in before starting them."""
    return create_app(Settings())


def _load(settings: Settings, index_dir: Path, *, encoder: Encoder, segments: dict) -> AnswerService:
    """How the holder loads each index version: one encoder (the model loads once), settings' options, and
    the segments already open (a new version opens only what it adds)."""
    service = build_service(settings, index_dir, encoder, segments=segments)
    for name in set(segments) - set(service.index.segment_names):
        del segments[name]  # merged away or collected: do not keep it open
    observe_index(service.index_version, service.index.n_paragraphs)
    return service


__all__ = ["create_app", "create_app_from_env"]
