"""The FastAPI app: routes mounted from api/routes, errors mapped in api/errors, the live service on app.state."""

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
from api.errors import install_error_handlers
from api.jobs import JobQueue
from api.knowledge import DirectoryWriter, KnowledgeBase
from api.live import ServiceHolder
from api.routes import admin, browse, ops, pages, qa
from api.settings import Settings
from api.uploads import UploadLimits
from data.errors import SpeechQAError
from embeddings.encoder import Encoder
from qa.service import AnswerService, serialized

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, service: AnswerService | None = None) -> FastAPI:
    """The app for ``settings``; tests pass a ready ``service`` (otherwise it is loaded in the lifespan).

    Either way a ``ServiceHolder`` serves it and swaps in each new version of its index directory."""
    settings = settings or Settings()
    index_dir = service.index.path if service is not None else settings.resolved_index_dir
    holder = ServiceHolder(index_dir, service=service, interval_s=settings.reload_interval_s)
    jobs = JobQueue()

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
            # tokenizer is not thread-safe), the ONNX one without (qa.service.serialized).
            encoder = serialized(encoder)
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
        holder.start()
        yield
        holder.stop()
        jobs.stop()

    app = FastAPI(
        title="speechqa",
        version="0.2.0",
        description="Questions over Chinese government speeches, answered with citations to the exact sentence.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.holder = holder
    app.state.knowledge = None
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    install_error_handlers(app)
    for router in (ops.router, qa.router, browse.router, pages.router, admin.router):
        app.include_router(router)
    return app


def _load(settings: Settings, index_dir: Path, *, encoder: Encoder, segments: dict) -> AnswerService:
    """How the holder loads each index version: one encoder (the model loads once), settings' options, and
    the segments already open (a new version opens only what it adds)."""
    service = build_service(settings, index_dir, encoder, segments=segments)
    for name in set(segments) - set(service.index.segment_names):
        del segments[name]  # merged away or collected: do not keep it open
    return service


__all__ = ["create_app"]
