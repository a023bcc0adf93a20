"""Request dependencies: the service a request is answered by, API keys, the admin key, rate limits, the work cap.

They are ``async def`` because none of them blocks (attribute reads, key comparisons, an in-memory rate count):
FastAPI runs a plain ``def`` dependency in the thread pool, and those round trips (a thread wake-up, the event
loop's self-pipe, the GIL handed back and forth) cost each /v1/ask more than the checks themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request

from api.guard import Guard, check_secret, presented_key
from api.live import ServiceHolder
from api.settings import Settings
from data.errors import NotFoundError, NotReadyError
from qa.service import AnswerService


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_holder(request: Request) -> ServiceHolder:
    return request.app.state.holder


async def get_guard(request: Request) -> Guard:
    return request.app.state.guard


async def get_service(request: Request) -> AnswerService:
    """The index version serving right now, or a 503 that says why there is none (loading, or it failed).

    A request keeps the service it got here to its end, so a swap to a new index version never changes
    the index under a request that is already running."""
    holder = request.app.state.holder
    svc = holder.current()
    if svc is None:
        err = holder.load_error
        if err is not None:
            raise NotReadyError(f"the index is not loaded: {err}", cause_code=err.code)
        raise NotReadyError("the index is not loaded yet", fix="retry in a moment")
    return svc


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def require_api_key(request: Request) -> str | None:
    """Router-level on /v1: the caller's key name (None when no keys are configured), then its rate bucket.
    A request without keys configured is counted per client IP."""
    guard: Guard = request.app.state.guard
    name = guard.keys.name_of(presented_key(request.headers))
    request.state.key_name = name
    guard.rate.hit(f"key:{name}" if name else f"ip:{client_ip(request)}")
    return name


async def require_admin_key(request: Request) -> None:
    """For /v1/admin/*: 404 while no admin key is configured (the routes do not exist), 401 without a key,
    403 for a wrong one. It never touches the question keys or their rate buckets."""
    admin = request.app.state.guard.admin_key
    if admin is None:
        raise NotFoundError(f"no route {request.url.path}")
    check_secret(presented_key(request.headers), admin, "admin key")
    request.state.key_name = "admin"


async def require_metrics_token(request: Request) -> None:
    token = request.app.state.guard.metrics_token
    if token is not None:
        check_secret(presented_key(request.headers), token, "metrics token")


async def take_slot(
    guard: Guard, svc: AnswerService, question: str, history: Sequence[str] | None = None
) -> Callable[[], None]:
    """Wait for one of the process's answer slots; returns the call that gives it back.

    While the request waits (parked on the event loop, holding no worker thread), its question is announced to
    the query encoder, so that the request ahead of it can encode both in one batch (``qa.batching``); the
    announcement is withdrawn with the slot, or at once when no slot comes (503).
    """
    withdraw = svc.announce(question, history)
    try:
        await guard.gate.acquire()
    except BaseException:
        withdraw()
        raise

    def release() -> None:
        guard.gate.release()
        withdraw()

    return release


@asynccontextmanager
async def answer_slot(
    guard: Guard, svc: AnswerService, question: str, history: Sequence[str] | None = None
) -> AsyncIterator[None]:
    """A slot (``take_slot``) for the length of a plain (non-streaming) answer or search. Entered in the route,
    after the body is validated: a malformed request never waits."""
    release = await take_slot(guard, svc, question, history)
    try:
        yield
    finally:
        release()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[AnswerService, Depends(get_service)]
HolderDep = Annotated[ServiceHolder, Depends(get_holder)]
GuardDep = Annotated[Guard, Depends(get_guard)]
ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)
AdminDep = AdminKey  # the admin router's name for it
MetricsToken = Depends(require_metrics_token)
