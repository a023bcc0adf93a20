"""Production hardening (issue 12): keys, limits, no 500s, headers, offline docs, metrics, request ids, CLI edges."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import require_admin_key
from api.errors import install_error_handlers
from api.guard import Guard, parse_api_keys
from api.settings import Settings
from qa.index import load_index
from qa.service import AnswerService

from .conftest import REPO, free_port

ASK = {"question": "丽泽商务区的地铁16号线什么时候通车？"}


@pytest.fixture(scope="module")
def service(fake_index_dir, fake_encoder):
    return AnswerService(load_index(fake_index_dir, fake_encoder), fake_encoder, composer="extractive-v1")


@pytest.fixture
def make_client(service):
    """A TestClient on an app with these settings (and the fake-encoder service)."""
    clients = []

    def make(svc=None, **settings) -> TestClient:
        c = TestClient(create_app(Settings(**settings), service=svc or service))
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _v1_operations(app: FastAPI) -> list[tuple[str, str]]:
    ops = []
    for path, item in app.openapi()["paths"].items():
        if path.startswith("/v1/"):
            ops.extend((method.upper(), path) for method in item)
    return ops


def _call(c: TestClient, method: str, path: str, headers: dict | None = None) -> httpx.Response:
    url = re.sub(r"\{[^}]+\}", "x", path)
    return c.request(method, url, json=ASK if method == "POST" else None, headers=headers or {})


# ----------------------------------------------------------------------------------------------------
# 1. Access control


def test_no_v1_route_answers_2xx_without_a_valid_key_when_keys_are_set(make_client):
    c = make_client(api_keys="alice:k-alice,k-bare")
    ops = _v1_operations(c.app)
    assert len(ops) >= 5
    for method, path in ops:
        missing = _call(c, method, path)
        assert missing.status_code == 401, (method, path, missing.text)
        assert missing.json()["code"] == "missing_key" and missing.headers["www-authenticate"] == "Bearer"
        wrong = _call(c, method, path, {"X-API-Key": "k-nobody"})
        assert wrong.status_code == 403, (method, path)
    # The probes stay open.
    assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


@pytest.mark.parametrize("header", [{"Authorization": "Bearer k-alice"}, {"X-API-Key": "k-alice"}])
def test_a_key_in_either_header_is_accepted(make_client, header):
    c = make_client(api_keys="alice:k-alice")
    assert c.post("/v1/ask", json=ASK, headers=header).status_code == 200
    assert c.get("/v1/speeches", headers=header).status_code == 200


def test_keys_from_a_file_and_the_access_log_names_the_key_never_the_key(make_client, tmp_path, caplog):
    keys = tmp_path / "keys"
    keys.write_text("# name key\nbob   s3cret-bob\nbare-only-key\n", encoding="utf-8")
    c = make_client(api_keys_file=keys)
    with caplog.at_level(logging.INFO, logger="speechqa.access"):
        r = c.post("/v1/search", json=ASK, headers={"Authorization": "Bearer s3cret-bob"})
        assert r.status_code == 200
        assert c.get("/v1/speeches", headers={"X-API-Key": "bare-only-key"}).status_code == 200
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "speechqa.access"]
    assert [line["key"] for line in lines] == ["bob", "key2"]
    assert all("s3cret" not in r.getMessage() and "bare-only" not in r.getMessage() for r in caplog.records)
    assert lines[0]["request_id"] == r.headers["x-request-id"]
    assert {"method", "path", "status", "ms", "client"} <= set(lines[0])


def test_key_parsing_rejects_malformed_and_duplicate_entries(tmp_path):
    assert list(parse_api_keys("a:1, 2 ,b:3")) == ["a", "key2", "b"]
    with pytest.raises(ValueError, match="twice"):
        parse_api_keys("a:1,a:2")
    bad = tmp_path / "keys"
    bad.write_text("a b c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="keys:1"):
        parse_api_keys(None, bad)
    with pytest.raises(ValueError, match="ADMIN_KEY"):
        Guard.from_settings(Settings(api_keys="a:same", admin_key="same"))


def _admin_app(settings: Settings) -> TestClient:
    """A stand-in for the coming /v1/admin router, guarded the way it will be."""
    app = FastAPI()
    app.state.guard = Guard.from_settings(settings)
    install_error_handlers(app)
    router = APIRouter(prefix="/v1/admin", dependencies=[Depends(require_admin_key)])

    @router.get("/ping")
    def ping() -> dict:
        return {"ok": True}

    app.include_router(router)
    return TestClient(app)


def test_admin_key_dependency_is_404_when_unset_401_without_403_wrong(make_client):
    assert _admin_app(Settings()).get("/v1/admin/ping").status_code == 404
    c = _admin_app(Settings(admin_key="adm", api_keys="q:question-key"))
    assert c.get("/v1/admin/ping").status_code == 401
    assert c.get("/v1/admin/ping", headers={"X-API-Key": "question-key"}).status_code == 403
    assert c.get("/v1/admin/ping", headers={"Authorization": "Bearer adm"}).json() == {"ok": True}
    # ...and the admin key is no question key.
    q = make_client(admin_key="adm", api_keys="q:question-key")
    assert q.post("/v1/ask", json=ASK, headers={"X-API-Key": "adm"}).status_code == 403


def test_metrics_token_guards_metrics_when_set(make_client):
    c = make_client(metrics_token="mt")
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert c.get("/metrics", headers={"Authorization": "Bearer mt"}).status_code == 200
    assert make_client().get("/metrics").status_code == 200


# ----------------------------------------------------------------------------------------------------
# 2. Limits


def test_a_body_over_the_cap_is_413_before_parsing(make_client):
    c = make_client(max_body_bytes=2048)
    big = b"{" + b" " * 4096  # not even JSON: a 422 would mean it was parsed
    r = c.post("/v1/ask", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    def chunks():  # no Content-Length: sent chunked, counted as it arrives
        for _ in range(8):
            yield b" " * 512

    r = c.post("/v1/ask", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert c.post("/v1/ask", json=ASK).status_code == 200


@pytest.mark.parametrize(
    "body, where",
    [
        ({**ASK, "history": ["上一个问题"] * 6}, "history"),
        ({**ASK, "history": ["问" * 501]}, "history item 0"),
        ({"question": "问" * 501}, "501"),
    ],
)
def test_history_and_question_caps_are_422(make_client, body, where):
    r = make_client().post("/v1/ask", json=body)
    assert r.status_code == 422 and where in r.json()["detail"]


def test_rate_limit_is_per_key_with_retry_after(make_client):
    c = make_client(api_keys="a:ka,b:kb", rate_limit="2/minute")
    a, b = {"X-API-Key": "ka"}, {"X-API-Key": "kb"}
    assert [c.post("/v1/search", json=ASK, headers=a).status_code for _ in range(2)] == [200, 200]
    r = c.post("/v1/search", json=ASK, headers=a)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert c.post("/v1/search", json=ASK, headers=b).status_code == 200
    assert c.get("/healthz").status_code == 200
    assert 'speechqa_rejected_total{reason="rate_limited"}' in c.get("/metrics").text


def test_rate_limit_without_keys_counts_per_client_ip(make_client):
    c = make_client(rate_limit="1/minute")
    assert c.get("/v1/speeches").status_code == 200
    assert c.get("/v1/speeches").status_code == 429


def test_busy_answer_slots_give_503_overloaded_while_cheap_routes_still_answer(make_client):
    c = make_client(max_concurrent=1, queue_wait_s=0.2)
    gate = c.app.state.guard.gate
    c.portal.call(gate.acquire)  # someone else's long answer, on the app's event loop
    try:
        for path in ("/v1/ask", "/v1/search", "/v1/ask/stream"):
            started = time.monotonic()
            r = c.post(path, json=ASK)
            assert r.status_code == 503 and r.json()["code"] == "overloaded", path
            assert r.headers["retry-after"] == "1" and time.monotonic() - started < 5
        assert c.get("/healthz").status_code == 200
        assert c.get("/v1/speeches").status_code == 200
    finally:
        c.portal.call(gate.release)
    assert c.post("/v1/ask", json=ASK).status_code == 200
    # A stream gives its slot back when it ends.
    assert c.post("/v1/ask/stream", json=ASK).status_code == 200
    assert c.post("/v1/ask/stream", json=ASK).status_code == 200


def test_an_answer_runs_on_the_gates_threads_with_the_request_context_and_a_cancelled_one_keeps_its_slot():
    """``WorkGate.run``: the caller's context variables reach the thread; the thread's exception reaches the
    caller; and a request cancelled mid-answer (its client went away) waits for the thread, which cannot be
    stopped, before it lets the cancellation through, so the slot it then gives back was really free."""
    import asyncio
    import contextvars

    from api.guard import WorkGate

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    gate = WorkGate(slots=1, wait_s=1.0)
    started, finish = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        finish.wait(10)
        return "late"

    def broken() -> None:
        raise ValueError("inside")

    async def main() -> None:
        var.set("request-1")
        assert await gate.run(var.get) == "request-1"
        assert threading.current_thread().name != await gate.run(lambda: threading.current_thread().name)
        with pytest.raises(ValueError, match="inside"):
            await gate.run(broken)

        task = asyncio.create_task(gate.run(slow))
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.2)
        assert not task.done()  # still holding on while the thread runs
        finish.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


# ----------------------------------------------------------------------------------------------------
# 3. No 500s on any input

BAD_BODIES = [
    ('{"question": "\\ud800"}', "question"),
    ('{"question": "a\\udfffb"}', "question"),
    ('{"question": "地铁", "history": ["\\ud800"]}', "history"),
    ('{"question": "地铁", "filters": {"speaker": "\\ud800"}}', "filter"),
    ('{"question": "地铁", "top_k": 1e400}', "top_k"),
    ('{"question": "\\u0000"}', ""),
    ('{"question": null}', "question"),
    ("[]", ""),
    ('"just a string"', ""),
    ("\xff\xfe", ""),
]


@pytest.mark.parametrize("raw, where", BAD_BODIES)
@pytest.mark.parametrize("path", ["/v1/ask", "/v1/search", "/v1/ask/stream"])
def test_bad_input_is_a_json_4xx_never_a_500(make_client, path, raw, where):
    c = make_client()
    r = c.post(
        path, content=raw.encode("utf-8", "surrogateescape"), headers={"content-type": "application/json"}
    )
    assert r.status_code in (200, 422), r.text
    assert r.headers["content-type"].startswith(("application/json", "text/event-stream"))
    if r.status_code == 422:
        assert where in r.json()["detail"] and r.json()["code"] == "invalid_request"


class _BrokenService(AnswerService):
    def ask(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    def ask_events(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        yield from super().ask_events(*args, **kwargs)
        raise RuntimeError("boom")


def test_an_unexpected_exception_is_a_json_500_and_a_stream_ends_with_an_error_event(
    make_client, fake_index_dir, fake_encoder, caplog
):
    broken = _BrokenService(load_index(fake_index_dir, fake_encoder), fake_encoder)
    c = make_client(svc=broken)
    with caplog.at_level(logging.ERROR):
        r = c.post("/v1/ask", json=ASK, headers={"X-Request-ID": "req-500"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "internal_error" and set(r.json()) == {"detail", "code"}
    assert r.headers["x-request-id"] == "req-500"
    assert any(rec.request_id == "req-500" and rec.exc_info for rec in caplog.records)
    r = c.post("/v1/ask/stream", json=ASK)
    blocks = [b for b in r.text.split("\n\n") if b.strip()]
    assert blocks[-1].startswith("event: error") and '"internal_error"' in blocks[-1]
    # The slot was given back.
    assert c.post("/v1/ask/stream", json=ASK).status_code == 200


GET_ROUTES = ["/", "/healthz", "/readyz", "/widget.js", "/docs", "/redoc", "/openapi.json", "/metrics"]


@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_works_wherever_get_does(make_client, path):
    c = make_client()
    get, head = c.get(path), c.head(path)
    assert get.status_code == head.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]


def test_405_carries_allow(make_client):
    c = make_client()
    r = c.get("/v1/ask")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and r.json()["code"] == "method_not_allowed"
    r = c.post("/healthz")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"


# ----------------------------------------------------------------------------------------------------
# 5. Headers and offline docs


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc"])
def test_pages_carry_csp_nosniff_referrer_and_frame_rules(make_client, path):
    h = make_client().get(path).headers
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert "default-src 'self'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "strict-origin-when-cross-origin"


def test_widget_js_is_embeddable_cross_origin(make_client):
    c = make_client(cors_origins="http://intranet.example")
    r = c.get("/widget.js", headers={"Origin": "http://intranet.example"})
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["access-control-allow-origin"] == "http://intranet.example"
    assert "x-frame-options" not in r.headers
    r = c.get("/widget.js", headers={"Origin": "http://elsewhere.example"})
    assert "access-control-allow-origin" not in r.headers


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_use_only_same_origin_assets_that_load(make_client, page):
    c = make_client()
    html = c.get(page).text
    parser = _Links()
    parser.feed(html)
    assert parser.urls, html
    for url in parser.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        r = c.get(url)
        assert r.status_code == 200 and len(r.content) > 0, url
    assert "cdn" not in html.lower() and "https://" not in html


# ----------------------------------------------------------------------------------------------------
# 6. Observability


def test_request_id_is_honoured_when_sane_and_generated_otherwise(make_client):
    c = make_client()
    assert c.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    for bad in ["has space", "x" * 200, ""]:
        rid = c.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert rid != bad and re.fullmatch(r"[0-9a-f]{32}", rid)
    assert c.get("/nope").headers["x-request-id"]


def test_metrics_count_requests_answers_and_the_index(make_client, service):
    c = make_client()
    c.post("/v1/ask", json=ASK)
    c.post("/v1/ask", json={"question": "火星上的天气怎么样？"})
    text = c.get("/metrics").text
    assert re.search(
        r'speechqa_http_requests_total\{method="POST",route="/v1/ask",status="200"\} [1-9]', text
    )
    assert 'speechqa_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/v1/ask"}' in text
    assert 'speechqa_questions_total{outcome="answered"}' in text
    assert 'speechqa_answer_stage_seconds_count{stage="retrieve"}' in text
    assert f'speechqa_index_info{{version="{service.index_version}"}} 1.0' in text
    assert f"speechqa_index_paragraphs {float(service.index.n_paragraphs)}" in text


# ----------------------------------------------------------------------------------------------------
# 2. Slow clients, against a real uvicorn on loopback (the fake-encoder app in a thread)


@pytest.fixture
def uvicorn_server(service, monkeypatch):
    import uvicorn

    from api.protocol import HeaderTimeoutH11Protocol

    monkeypatch.setattr(HeaderTimeoutH11Protocol, "header_timeout", 1.0)
    port = free_port()
    app = create_app(Settings(body_timeout_s=1.0, keep_alive_s=1, max_body_bytes=2048), service=service)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_keep_alive=1,
        http=HeaderTimeoutH11Protocol,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def _read_until_closed(sock: socket.socket, limit: float) -> bytes:
    sock.settimeout(limit)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_a_client_that_sends_its_body_too_slowly_gets_408_and_is_disconnected(uvicorn_server):
    with socket.create_connection(("127.0.0.1", uvicorn_server)) as s:
        s.sendall(
            b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"question": '
        )
        started = time.monotonic()
        data = _read_until_closed(s, limit=10)  # a socket.timeout here fails the test
        assert time.monotonic() - started < 5
    assert data.startswith(b"HTTP/1.1 408") and b'"code":"timeout"' in data.replace(b" ", b"")


def test_an_idle_keep_alive_connection_is_closed(uvicorn_server):
    with socket.create_connection(("127.0.0.1", uvicorn_server)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        data = _read_until_closed(s, limit=10)
        assert time.monotonic() - started < 5
    assert data.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"])
def test_a_client_that_idles_before_finishing_its_headers_is_disconnected(uvicorn_server, sent):
    with socket.create_connection(("127.0.0.1", uvicorn_server)) as s:
        s.sendall(sent)
        started = time.monotonic()
        assert _read_until_closed(s, limit=10) == b""
        assert time.monotonic() - started < 5


def test_a_chunked_body_over_the_cap_is_413_over_a_real_socket(uvicorn_server):
    with socket.create_connection(("127.0.0.1", uvicorn_server)) as s:
        s.sendall(b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):
            s.sendall(b"200\r\n" + b" " * 512 + b"\r\n")
        data = _read_until_closed(s, limit=10)
    assert data.startswith(b"HTTP/1.1 413")


def test_connections_of_a_proto_0_listener_get_tcp_nodelay():
    """uvicorn --workers N listens on socket.socket(AF_INET) (proto 0), where asyncio leaves Nagle on."""
    from api.protocol import set_nodelay

    class Transport:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str):
            return self.sock if name == "socket" else None

    with socket.socket(socket.AF_INET) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()):
            conn, _ = listener.accept()
            with conn:
                assert conn.proto == 0
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                set_nodelay(Transport(conn))  # type: ignore[arg-type]
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


# ----------------------------------------------------------------------------------------------------
# 3/4. The CLI


def test_serve_refuses_a_non_empty_directory_without_a_manifest(tmp_path, capsys, monkeypatch):
    from cli import main as cli

    index = tmp_path / "index"
    index.mkdir()
    (index / "paragraphs.jsonl").write_text("keep me\n", encoding="utf-8")
    monkeypatch.setattr(cli, "run_ingest", lambda *a, **k: pytest.fail("serve built over a directory"))
    code = cli.main(["serve", "--index", str(index), "--workers", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and str(index) in err
    assert [p.name for p in index.iterdir()] == ["paragraphs.jsonl"]
    assert (index / "paragraphs.jsonl").read_text(encoding="utf-8") == "keep me\n"


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_serve_builds_the_builtin_index_only_into_a_missing_or_empty_directory(tmp_path, monkeypatch, state):
    import uvicorn

    from cli import main as cli

    index = tmp_path / "index"
    if state == "empty":
        index.mkdir()
    built = []
    monkeypatch.setattr(
        cli, "run_ingest", lambda settings, paths: built.append(settings.resolved_index_dir) or 0
    )
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    assert cli.main(["serve", "--index", str(index), "--workers", "1"]) == 0
    assert built == [index]


def test_serve_reports_a_malformed_key_setting_in_one_line(tmp_path, capsys, monkeypatch):
    from cli import main as cli

    monkeypatch.setenv("SPEECHQA_API_KEYS", "a:1,a:2")
    assert cli.main(["serve", "--index", str(tmp_path / "index"), "--workers", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: API key name 'a' is used twice"


def test_invalid_utf8_on_argv_is_one_clear_error_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "search", b"\xff\xfe", "--index", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.decode().strip() == "error: the question argument is not valid UTF-8"


def test_batch_search_reports_a_bad_line_as_a_json_row_and_goes_on(monkeypatch, capsys, service):
    from cli import main as cli

    monkeypatch.setattr(cli, "build_service", lambda settings: service)

    class _Stdin:
        buffer = io.BytesIO("丽泽\n".encode() + b"\xff\xfe bad\n" + "地铁\n".encode())

    monkeypatch.setattr(sys, "stdin", _Stdin())
    assert cli.main(["search", "-", "-k", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r.get("question") for r in rows] == ["丽泽", None, "地铁"]
    assert rows[1]["line"] == 2 and rows[1]["code"] == "invalid_utf8" and "UTF-8" in rows[1]["error"]
    assert rows[0]["passages"] and rows[2]["passages"]


@pytest.mark.parametrize(
    "err, words",
    [(errno.ENOSPC, "No space left on device"), (errno.EACCES, "Permission denied")],
)
def test_ingest_disk_full_or_permission_error_is_one_line_and_non_zero(
    tmp_path, monkeypatch, capsys, fake_encoder, err, words
):
    import os

    import qa.index
    from cli import main as cli

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(err, os.strerror(err), str(tmp_path / "index" / "dense.faiss"))

    monkeypatch.setattr(cli, "build_encoder", lambda settings, for_ingest=False: fake_encoder)
    monkeypatch.setattr(qa.index, "build_index", fail)
    monkeypatch.setenv("SPEECHQA_HOME", str(tmp_path))
    code = cli.main(["ingest", "--index", str(tmp_path / "index")])
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert "dense.faiss" in lines[0]


# ----------------------------------------------------------------------------------------------------
# 8. The schema, fuzzed: no 5xx and every response as documented (a few hundred cases, in-process)


def test_schemathesis_finds_no_5xx_and_no_schema_violation(service):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]

    app = create_app(Settings(api_keys="fuzz:fuzz-key"), service=service)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    cases = 0

    for op in schema.get_all_operations():
        operation = op.ok()

        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case):  # type: ignore[no-untyped-def]
            nonlocal cases
            cases += 1
            for headers in ({"X-API-Key": "fuzz-key"}, {}):
                try:
                    case.call_and_validate(headers=headers, checks=checks)
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported together
                    failures.append(f"{case.method} {case.path}: {str(exc)[:400]}")

        run()
    assert cases >= 200
    assert not failures, "\n".join(failures[:10])


# ----------------------------------------------------------------------------------------------------
# 7. Several worker processes behind one port (the real model, the real server)


@pytest.mark.slow
def test_serve_with_two_workers_answers_and_sums_metrics_over_the_workers(real_index_dir):
    from .conftest import start_server

    port = free_port()
    proc = start_server(real_index_dir, port, {"SPEECHQA_API_KEYS": "w:wk"}, workers=2)
    base = f"http://127.0.0.1:{port}"
    try:
        n = 12
        with httpx.Client(base_url=base, timeout=60, headers={"X-API-Key": "wk"}) as http:
            for _ in range(n):  # a new connection each time, so both workers take some
                r = httpx.post(f"{base}/v1/search", json=ASK, headers={"X-API-Key": "wk"}, timeout=60)
                assert r.status_code == 200 and r.headers["x-request-id"]
            assert http.post("/v1/search", json=ASK, headers={"X-API-Key": "no"}).status_code == 403
            text = http.get("/metrics").text
        line = re.search(
            r'speechqa_http_requests_total\{method="POST",route="/v1/search",status="200"\} (\S+)', text
        )
        assert line and float(line.group(1)) == n, text[:2000]
        assert "speechqa_index_paragraphs" in text

        # A worker killed outright: its socket goes with it, so no new connection waits on a dead listener
        # (each worker listens on a socket of its own; the supervisor keeps no copy open).
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        time.sleep(0.5)
        for _ in range(n):
            r = httpx.post(f"{base}/v1/search", json=ASK, headers={"X-API-Key": "wk"}, timeout=10)
            assert r.status_code == 200
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_two_workers_even_out_keep_alive_connections_the_kernel_split_unevenly(real_index_dir):
    """12 keep-alive connections asking in turn end up 6/6 over two workers (api.balance), whatever split
    SO_REUSEPORT's hash gave them, and no request fails on the way (a moved client just reconnects)."""
    import http.client

    from .conftest import start_server

    port = free_port()
    proc = start_server(real_index_dir, port, workers=2)
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(12)]
    try:
        workers = _children(proc.pid)
        assert len(workers) == 2, workers
        body = json.dumps(ASK).encode()
        splits, moved, deadline = [], 0, time.monotonic() + 30
        while time.monotonic() < deadline:
            for conn in conns:
                conn.request("POST", "/v1/search", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                assert r.status == 200
                moved += r.getheader("connection", "") == "close"
            owner = _connection_owners(workers, [c.sock.getsockname()[1] for c in conns if c.sock])
            splits.append(sorted(list(owner.values()).count(w) for w in workers))
            if len(splits) >= 20 and splits[-1] == [6, 6] and splits[-10:].count([6, 6]) == 10:
                break
        assert splits[-1] == [6, 6], (splits, moved)
    finally:
        for conn in conns:
            conn.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _connection_owners(workers: list[int], client_ports: list[int]) -> dict[int, int]:
    """Which worker process holds the server end of each loopback connection from ``client_ports``."""
    inodes = {}
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[int(target[8:-1])] = pid
    owners = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, inode = int(fields[2].rsplit(":", 1)[1], 16), int(fields[9])
        if remote_port in client_ports and inode in inodes:
            owners[remote_port] = inodes[inode]
    return owners


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` and that run a multiprocessing child (uvicorn's workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(stat.parent.name))
    return found


def test_each_worker_gets_a_socket_of_its_own_on_one_port_and_the_parent_keeps_none():
    import uvicorn

    from cli.workers import ReusePortWorkers, check_port_free

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        config = uvicorn.Config(
            "api.app:create_app_from_env", factory=True, host="127.0.0.1", port=0, workers=2, log_config=None
        )
        supervisor = ReusePortWorkers(config)
        first, second = supervisor.sockets[0], supervisor.sockets[0]
        port = first.getsockname()[1]
        assert second.getsockname()[1] == port and first.fileno() != second.fileno()
        # Bound but not listening: the kernel sends a worker nothing until its server listens (app loaded).
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        second.listen()
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        # A port something listens on is refused up front (SO_REUSEPORT alone would share it silently).
        with pytest.raises(OSError):
            check_port_free("127.0.0.1", port)
        supervisor._close_handed()
        assert first.fileno() == -1 and second.fileno() == -1
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
