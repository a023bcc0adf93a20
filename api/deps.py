"""Request dependencies: the service a request is answered by, and the admin-key check for /v1/admin."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from api.live import ServiceHolder
from api.settings import Settings
from data.errors import MissingKeyError, NotFoundError, NotReadyError, WrongKeyError
from qa.service import AnswerService


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_holder(request: Request) -> ServiceHolder:
    return request.app.state.holder


def get_service(request: Request) -> AnswerService:
    """The index version serving right now, or a 503 that says why there is none (loading, or it failed).

    A request keeps the service it got here to its end, so a swap to a new index version never changes
    the index under a request that is already running."""
    holder = get_holder(request)
    svc = holder.current()
    if svc is None:
        err = holder.load_error
        if err is not None:
            raise NotReadyError(f"the index is not loaded: {err}", cause_code=err.code)
        raise NotReadyError("the index is not loaded yet", fix="retry in a moment")
    return svc


def presented_key(request: Request) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return (request.headers.get("x-api-key") or "").strip() or None


def require_admin(request: Request) -> None:
    """Router-level on /v1/admin: 404 while SPEECHQA_ADMIN_KEY is unset (the routes are off, never open),
    401 without a key, 403 with another one."""
    secret = get_settings(request).admin_key
    if secret is None or not secret.get_secret_value():
        raise NotFoundError(f"no route {request.url.path}")
    key = presented_key(request)
    if key is None:
        raise MissingKeyError(
            "this route needs the admin key", fix="send `Authorization: Bearer KEY` or `X-API-Key: KEY`"
        )
    # compare_digest: the time taken does not tell how much of a guessed key was right.
    if not hmac.compare_digest(key.encode("utf-8"), secret.get_secret_value().encode("utf-8")):
        raise WrongKeyError("that is not the admin key")


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[AnswerService, Depends(get_service)]
HolderDep = Annotated[ServiceHolder, Depends(get_holder)]
AdminDep = Depends(require_admin)
