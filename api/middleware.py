"""ASGI middleware, outermost first: ``EdgeMiddleware`` (request id, security headers, HEAD, JSON 500, access
log, metrics) -> CORS -> ``BodyLimitMiddleware`` (413 / 408 before any parsing) -> the routes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers, MutableHeaders

from api.observe import HTTP_LATENCY, HTTP_REQUESTS, REJECTED, REQUEST_ID, log_access, request_id_from

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Pages a person opens: inline <script>/<style> in demo.html and the docs pages need 'unsafe-inline'; nothing
# may come from another origin, and no other site may frame them.
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# Everything else is data: it may run nothing and be framed by nobody.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGES = ("/", "/admin", "/docs", "/redoc", "/docs/oauth2-redirect")


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """Headers for a response to ``path``; /widget.js is meant to be loaded by other origins' pages."""
    out = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"strict-origin-when-cross-origin")]
    if path == "/widget.js":
        return [*out, (b"cross-origin-resource-policy", b"cross-origin")]
    csp = PAGE_CSP if path in PAGES or path.startswith("/admin/") else DATA_CSP
    return [*out, (b"content-security-policy", csp.encode()), (b"x-frame-options", b"DENY")]


async def send_json(send: Send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    data = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class EdgeMiddleware:
    """The outermost layer: everything every response gets, and the last word on exceptions."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = request_id_from(headers.get("x-request-id"))
        token = REQUEST_ID.set(rid)
        method = scope["method"]
        path = scope.get("path", "")
        # HEAD is answered wherever GET is: route it as GET and send the headers without the body.
        inner = dict(scope, method="GET") if method == "HEAD" else scope
        started = time.perf_counter()
        state = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                state["status"] = message["status"]
                h = MutableHeaders(raw=list(message.get("headers", [])))
                h["x-request-id"] = rid
                for name, value in security_headers(path):
                    if name.decode() not in h:
                        h.append(name.decode(), value.decode())
                allow = h.get("allow")
                if message["status"] == 405 and allow and "GET" in allow and "HEAD" not in allow:
                    h["allow"] = allow + ", HEAD"
                message = {**message, "headers": h.raw}
            elif message["type"] == "http.response.body" and method == "HEAD":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, send_wrapper)
        except Exception:  # noqa: BLE001 - the one place an unexpected error becomes a JSON 500
            log.exception("unhandled error on %s %s", method, path)
            if not state["started"]:
                await send_json(
                    send_wrapper,
                    500,
                    {"detail": f"internal error (request id {rid})", "code": "internal_error"},
                )
        finally:
            elapsed = time.perf_counter() - started
            route = inner.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            status = state["status"]
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(elapsed)
            if status == 429:
                REJECTED.labels("rate_limited").inc()
            client = scope.get("client")
            log_access(
                method=method,
                path=path,
                route=template,
                status=status,
                ms=round(elapsed * 1000, 1),
                request_id=rid,
                key=(inner.get("state") or {}).get("key_name"),
                client=client[0] if client else None,
            )
            REQUEST_ID.reset(token)


class BodyLimitMiddleware:
    """Reads the whole request body before the app sees it: more than ``max_bytes`` (declared or counted, also
    for chunked bodies) is a 413, a body that has not arrived within ``timeout_s`` a 408. Either way the
    connection is closed and nothing was parsed. Bodies are small JSON here, so buffering costs nothing.

    ``exempt`` paths (the admin upload) stream their bodies to disk and enforce their own, larger limits."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length is None and not chunked:
            await self.app(scope, receive, send)
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(send)
            return
        body = bytearray()
        too_large = False
        try:
            # One deadline for the whole body. asyncio.timeout, not wait_for: wait_for ran each receive() as a
            # task of its own, an extra turn of the event loop on every request.
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_bytes:
                        too_large = True
                        break
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            detail = f"the request body did not arrive within {self.timeout_s:g} s"
            await _reject(send, "body_timeout", 408, detail, "timeout")
            return
        if too_large:
            await self._too_large(send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes} bytes"
        await _reject(send, "body_too_large", 413, detail, "payload_too_large")


async def _reject(send: Send, reason: str, status: int, detail: str, code: str) -> None:
    """Turn a request away before the app saw it (counted by ``reason``), and close the connection."""
    REJECTED.labels(reason).inc()
    await send_json(send, status, {"detail": detail, "code": code}, [(b"connection", b"close")])
