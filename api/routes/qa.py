"""Questions: cited answers (JSON and Server-Sent Events) and passage search."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from api.deps import ServiceDep
from api.errors import ERROR_RESPONSES, error_body
from api.schemas import AnswerOut, AskIn, CitationOut, PassageOut, QuestionIn, SearchOut, TimingOut
from data.errors import SpeechQAError
from qa.types import AnswerEvent

router = APIRouter(prefix="/v1", tags=["qa"], responses=ERROR_RESPONSES)


@router.post("/ask", response_model=AnswerOut)
def ask(body: AskIn, svc: ServiceDep) -> AnswerOut:
    filters = body.filters.to_domain() if body.filters else None
    return AnswerOut.of(svc.ask(body.question, body.top_k, filters, history=body.history))


@router.post("/ask/stream", responses={200: {"content": {"text/event-stream": {}}}})
async def ask_stream(body: AskIn, svc: ServiceDep) -> StreamingResponse:
    """Server-Sent Events: ``meta`` (retrieved passages), ``delta`` (answer text), ``citations``,
    ``done`` (timing) or ``error``. The concatenated deltas equal the answer of ``POST /v1/ask``."""
    filters = body.filters.to_domain() if body.filters else None
    # Validate before the stream starts so bad input is a plain 4xx, not an event.
    svc.validate_question(body.question)
    if filters is not None:
        svc.check_filters(filters)

    async def events() -> AsyncIterator[str]:
        try:
            events = svc.ask_events(body.question, body.top_k, filters, body.history)
            async for event in iterate_in_threadpool(events):
                yield _sse(event.kind, _event_data(event))
        except SpeechQAError as exc:
            yield _sse("error", error_body(exc))
        except Exception:  # noqa: BLE001 - a stream must end with an event, never be cut
            yield _sse("error", {"detail": "internal error while answering", "code": "internal_error"})
            raise

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/search", response_model=SearchOut)
def search(body: QuestionIn, svc: ServiceDep) -> SearchOut:
    filters = body.filters.to_domain() if body.filters else None
    return SearchOut(passages=[PassageOut.of(h) for h in svc.search(body.question, body.top_k, filters)])


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
