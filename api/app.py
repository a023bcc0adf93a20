"""The FastAPI app: JSON API, SSE streaming, the widget's static files; errors mapped to HTTP in one table."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.assemble import build_service
from api.schemas import (
    AnswerOut,
    AskIn,
    CitationOut,
    ErrorOut,
    PassageDetailOut,
    PassageOut,
    QuestionIn,
    SearchOut,
    SpeechOut,
)
from api.settings import Settings
from data.errors import (
    EmbeddingModelError,
    IndexError_,
    InvalidQuestionError,
    NotFoundError,
    SpeechQAError,
    UnknownFilterError,
)
from qa.service import AnswerService

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"

# One table from domain errors to HTTP status; the body is always {"detail", "code"}.
STATUS_OF: dict[type[SpeechQAError], int] = {
    InvalidQuestionError: 422,
    UnknownFilterError: 422,
    NotFoundError: 404,
    IndexError_: 503,
    EmbeddingModelError: 503,
}
ERROR_RESPONSES: dict[int | str, dict] = {
    404: {"model": ErrorOut},
    422: {"model": ErrorOut},
    503: {"model": ErrorOut},
}


class ServiceNotReady(SpeechQAError):
    code = "index_not_loaded"


def status_for(exc: SpeechQAError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]  # type: ignore[index]
    return 503 if isinstance(exc, ServiceNotReady) else 500


def create_app(settings: Settings | None = None, service: AnswerService | None = None) -> FastAPI:
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
        version="0.1.0",
        description="Questions over Chinese government speeches, answered with citations to the exact sentence.",
        lifespan=lifespan,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
        )

    def get_service(request: Request) -> AnswerService:
        svc = request.app.state.service
        if svc is None:
            err = request.app.state.load_error
            if err is not None:
                raise ServiceNotReady(f"the index is not loaded: {err}")
            raise ServiceNotReady("the index is not loaded yet", fix="retry in a moment")
        return svc

    @app.exception_handler(SpeechQAError)
    async def _domain_error(request: Request, exc: SpeechQAError) -> JSONResponse:
        code = exc.code
        if isinstance(exc, ServiceNotReady) and request.app.state.load_error is not None:
            code = request.app.state.load_error.code
        return JSONResponse({"detail": str(exc), "code": code}, status_code=status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
        return JSONResponse({"detail": "; ".join(parts), "code": "invalid_request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"detail": str(exc.detail), "code": code}, status_code=exc.status_code)

    # -- probes -----------------------------------------------------------------------------------------

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": ErrorOut}})
    def readyz(request: Request) -> dict:
        svc = get_service(request)
        return {"status": "ready", "index_version": svc.index_version}

    # -- API --------------------------------------------------------------------------------------------

    @app.post("/v1/ask", response_model=AnswerOut, tags=["qa"], responses=ERROR_RESPONSES)
    def ask(body: AskIn, request: Request) -> AnswerOut:
        svc = get_service(request)
        filters = body.filters.to_domain() if body.filters else None
        return AnswerOut.of(svc.ask(body.question, body.top_k, filters, history=body.history))

    @app.post(
        "/v1/ask/stream",
        tags=["qa"],
        responses={200: {"content": {"text/event-stream": {}}}, **ERROR_RESPONSES},
    )
    async def ask_stream(body: AskIn, request: Request) -> StreamingResponse:
        """Server-Sent Events: ``meta`` (retrieved passages), ``delta`` (answer text), ``citations``,
        ``done`` (timing) or ``error``. The concatenated deltas equal the answer of ``POST /v1/ask``."""
        svc = get_service(request)
        filters = body.filters.to_domain() if body.filters else None
        # Validate before the stream starts so bad input is a plain 4xx, not an event.
        svc.validate_question(body.question)
        if filters is not None:
            svc.retriever.allowed_rows(filters)

        async def events() -> AsyncIterator[str]:
            try:
                answer = await run_in_threadpool(svc.ask, body.question, body.top_k, filters, body.history)
            except SpeechQAError as exc:
                yield _sse("error", {"detail": str(exc), "code": exc.code})
                return
            out = AnswerOut.of(answer)
            yield _sse(
                "meta",
                {"passages": [p.model_dump() for p in out.related], "index_version": out.index_version},
            )
            for piece in _pieces(out.answer):
                yield _sse("delta", {"text": piece})
            yield _sse(
                "citations",
                {"citations": [c.model_dump() for c in out.citations], "answerable": out.answerable},
            )
            yield _sse("done", {"timing_ms": out.timing_ms.model_dump(), "answerable": out.answerable})

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/v1/search", response_model=SearchOut, tags=["qa"], responses=ERROR_RESPONSES)
    def search(body: QuestionIn, request: Request) -> SearchOut:
        svc = get_service(request)
        filters = body.filters.to_domain() if body.filters else None
        return SearchOut(passages=[PassageOut.of(h) for h in svc.search(body.question, body.top_k, filters)])

    @app.get(
        "/v1/passages/{passage_id}",
        response_model=PassageDetailOut,
        tags=["browse"],
        responses=ERROR_RESPONSES,
    )
    def passage(passage_id: str, request: Request) -> PassageDetailOut:
        return PassageDetailOut(**get_service(request).passage(passage_id))

    @app.get("/v1/speeches", response_model=list[SpeechOut], tags=["browse"], responses=ERROR_RESPONSES)
    def speeches(request: Request) -> list[SpeechOut]:
        return [SpeechOut(**s) for s in get_service(request).speeches()]

    # -- widget -----------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def demo() -> FileResponse:
        return FileResponse(STATIC / "demo.html", media_type="text/html; charset=utf-8")

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        return FileResponse(
            STATIC / "widget.js",
            media_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    return app


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _pieces(answer: str) -> Iterator[str]:
    """Split the answer after each citation marker or sentence end, so the client renders it as it arrives."""
    start = 0
    for i, ch in enumerate(answer):
        if ch == "]" or (ch in "。！？：" and answer[i + 1 : i + 2] != "["):
            yield answer[start : i + 1]
            start = i + 1
    if start < len(answer):
        yield answer[start:]


__all__ = ["create_app", "build_service", "PassageOut", "CitationOut"]
