"""Request dependencies: the service a request is answered by, and the place auth dependencies attach."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.settings import Settings
from data.errors import NotReadyError
from qa.service import AnswerService


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_service(request: Request) -> AnswerService:
    """The loaded service, or a 503 that says why there is none (still loading, or the load failed)."""
    svc = request.app.state.service
    if svc is None:
        err = request.app.state.load_error
        if err is not None:
            raise NotReadyError(f"the index is not loaded: {err}", cause_code=err.code)
        raise NotReadyError("the index is not loaded yet", fix="retry in a moment")
    return svc


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[AnswerService, Depends(get_service)]
