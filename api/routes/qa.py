"""Questions: cited answers (JSON and Server-Sent Events) and passage search."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool
from starlette.types import Receive, Scope, Send

from api.deps import GuardDep, ServiceDep, answer_slot, take_slot
from api.errors import ERROR_RESPONSES, error_body
from api.observe import observe_answer
from api.schemas import AnswerOut, AskIn, CitationOut, PassageOut, QuestionIn, SearchOut, TimingOut
from data.errors import SpeechQAError
from qa.types import AnswerEvent

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["qa"], responses=ERROR_RESPONSES)


def _json(model: BaseModel) -> Response:
    """A response model written once, by pydantic, on the worker thread that built it.

    Returning the model instead makes FastAPI validate it again and serialise it on a second trip through
    the threadpool (for a ``def`` route), about 1 ms of a 9 ms answer over loopback; the schema in the
    OpenAPI document still comes from ``response_model``.
    """
    return Response(model.model_dump_json(), media_type="application/json")


@router.post("/ask", response_model=AnswerOut)
async def ask(body: AskIn, svc: ServiceDep, guard: GuardDep) -> Response:
    def work() -> Response:
        filters = body.filters.to_domain() if body.filters else None
        answer = svc.ask(body.question, body.top_k, filters, history=body.history)
        observe_answer(answer.answerable, answer.timing_ms)
        return _json(AnswerOut.of(answer))

    async with answer_slot(guard, svc, body.question, body.history):
        return await guard.gate.run(work)


@router.post("/ask/stream", responses={200: {"content": {"text/event-stream": {}}}})
async def ask_stream(body: AskIn, svc: ServiceDep, guard: GuardDep) -> StreamingResponse:
    """Server-Sent Events: ``meta`` (retrieved passages), ``delta`` (answer text), ``citations``,
    ``done`` (timing) or ``error``. The concatenated deltas equal the answer of ``POST /v1/ask``."""
    filters = body.filters.to_domain() if body.filters else None
    # Validate before the stream starts so bad input is a plain 4xx, not an event.
    svc.validate_question(body.question)
    if filters is not None:
        svc.check_filters(filters)

    # The slot is held for the whole stream; waiting for it happens before the response starts, so an
    # overloaded process answers a plain 503. The question is announced for batching meanwhile.
    release = await take_slot(guard, svc, body.question, body.history)

    async def events() -> AsyncIterator[bytes]:
        try:
            events = svc.ask_events(body.question, body.top_k, filters, body.history)
            async for event in iterate_in_threadpool(events):
                data = _event_data(event)
                if event.kind == "done":
                    observe_answer(event.answerable, event.timing_ms)
                # Encoded here so that even an unencodable string ends the stream with an error event.
                yield _sse(event.kind, data).encode("utf-8")
        except SpeechQAError as exc:
            yield _sse("error", error_body(exc)).encode("utf-8")
        except Exception:  # noqa: BLE001 - a stream must end with an event, never be cut
            log.exception("error while streaming an answer")
            yield _sse(
                "error", {"detail": "internal error while answering", "code": "internal_error"}
            ).encode()

    return _SlotStream(
        events(),
        release=release,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _SlotStream(StreamingResponse):
    """A stream that gives its work slot back however it ends (done, error, client gone)."""

    def __init__(self, content: AsyncIterator[bytes], *, release: Callable[[], None], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(content, **kwargs)
        self._release = release
        self._released = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self._released:
                self._released = True
                self._release()


@router.post("/search", response_model=SearchOut)
async def search(body: QuestionIn, svc: ServiceDep, guard: GuardDep) -> Response:
    def work() -> Response:
        filters = body.filters.to_domain() if body.filters else None
        return _json(
            SearchOut(passages=[PassageOut.of(h) for h in svc.search(body.question, body.top_k, filters)])
        )

    async with answer_slot(guard, svc, body.question):
        return await guard.gate.run(work)


def _event_data(event: AnswerEvent) -> dict:
    """The wire form of one answer event (field names as in ``AnswerOut``)."""
    if event.kind == "meta":
        return {
            "passages": [PassageOut.of(h).model_dump() for h in event.hits],
            "index_version": event.index_version,
        }
    if event.kind == "delta":
        return {"text": event.text}
    if event.kind == "citations":
        return {
            "citations": [CitationOut.of(c).model_dump() for c in event.citations],
            "answerable": event.answerable,
        }
    return {"timing_ms": TimingOut(**event.timing_ms).model_dump(), "answerable": event.answerable}


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
