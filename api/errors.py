"""Domain errors to HTTP: one table, one JSON body shape ``{"detail", "code"}`` a person can act on."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import ErrorOut
from data.errors import (
    BusyError,
    EmbeddingModelError,
    IndexError_,
    InvalidQuestionError,
    InvalidUploadError,
    MissingKeyError,
    NotFoundError,
    NotReadyError,
    OverloadedError,
    RateLimitedError,
    SpeechQAError,
    UnknownFilterError,
    UploadTooLargeError,
    WrongKeyError,
)

# The one table from domain errors to HTTP status; a subclass inherits its parent's row.
STATUS_OF: dict[type[SpeechQAError], int] = {
    InvalidQuestionError: 422,
    UnknownFilterError: 422,
    NotFoundError: 404,
    NotReadyError: 503,
    IndexError_: 503,
    EmbeddingModelError: 503,
    MissingKeyError: 401,
    WrongKeyError: 403,
    InvalidUploadError: 422,
    UploadTooLargeError: 413,
    RateLimitedError: 429,
    OverloadedError: 503,
}
# What every /v1 route may answer besides its own 200 (the OpenAPI document lists them).
ERROR_RESPONSES: dict[int | str, dict] = {
    401: {"model": ErrorOut, "description": "an API key is required (SPEECHQA_API_KEYS is set)"},
    403: {"model": ErrorOut, "description": "the API key is not valid"},
    404: {"model": ErrorOut},
    408: {"model": ErrorOut, "description": "the request body did not arrive in time"},
    413: {"model": ErrorOut, "description": "the request body is too large"},
    422: {"model": ErrorOut},
    429: {"model": ErrorOut, "description": "rate limit reached; see Retry-After"},
    503: {"model": ErrorOut, "description": "no index loaded, or overloaded (see Retry-After)"},
}
_HTTP_CODES = {
    401: "missing_key",
    403: "wrong_key",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "payload_too_large",
    429: "rate_limited",
}


def status_for(exc: SpeechQAError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]  # type: ignore[index]
    return 500


def error_body(exc: SpeechQAError) -> dict[str, str]:
    code = getattr(exc, "cause_code", None) or exc.code
    return {"detail": str(exc), "code": code}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SpeechQAError)
    async def _domain_error(request: Request, exc: SpeechQAError) -> JSONResponse:
        headers = {}
        if isinstance(exc, BusyError):
            headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, MissingKeyError):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse(error_body(exc), status_code=status_for(exc), headers=headers)

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
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            {"detail": str(exc.detail), "code": code},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
