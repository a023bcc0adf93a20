"""Helpers for the browser tests: a real `speechqa serve` subprocess, an in-process app server, a tiny host site,
Chromium tabs, SSE parsing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Playwright,
    Route,
    sync_playwright,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def speechqa_command() -> list[str]:
    """The installed console script next to this interpreter (the venv), else the one on PATH."""
    candidate = Path(sys.executable).with_name("speechqa")
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("speechqa")
    if found:
        return [found]
    return [sys.executable, "-m", "cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ingest(index_dir: Path, env: Mapping[str, str], log_path: Path, timeout: float = 900) -> None:
    """Build the built-in corpus index into index_dir; fail with the command's output if it fails."""
    with log_path.open("wb") as log:
        proc = subprocess.run(
            [*speechqa_command(), "ingest", "--index", str(index_dir)],
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"speechqa ingest failed ({proc.returncode}):\n{_tail(log_path)}")


@dataclass
class Server:
    """A `speechqa serve` subprocess on 127.0.0.1."""

    index_dir: Path
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 300) -> Server:
        log = self.log_path.open("wb")
        cmd = [
            *speechqa_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--index",
            str(self.index_dir),
        ]
        # Own process group, so stop() also ends any workers the server spawns.
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"speechqa serve exited with {self.proc.returncode}:\n{_tail(self.log_path)}"
                )
            try:
                if httpx.get(self.base_url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"speechqa serve not ready after {ready_timeout:.0f} s:\n{_tail(self.log_path)}")

    def warm_up(self) -> None:
        """One throwaway question, so timings printed by the tests are not the first-query cold start."""
        httpx.post(self.base_url + "/v1/ask", json={"question": "丰台园的主导产业是什么？"}, timeout=120)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-limit:]
    except OSError:
        return "(no log)"


class StaticSite:
    """A threaded HTTP server on 127.0.0.1 serving fixed pages: a host page on another origin."""

    def __init__(self, pages: Mapping[str, str]) -> None:
        self.pages = dict(pages)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                body = site.pages.get(urlsplit(self.path).path)
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StaticSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class AppServer:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1: in-process, so a test can look at its state."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> AppServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process app server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (import this fixture with ``make_tab``)."""
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@pytest.fixture
def make_tab(browser: Browser) -> Iterator[Callable[..., Tab]]:
    """Opens tabs (``make_tab(**context_args)``), each in its own context, closed after the test."""
    tabs: list[Tab] = []

    def make(**context_args: Any) -> Tab:
        tab = Tab(browser, **context_args)
        tabs.append(tab)
        return tab

    yield make
    for tab in tabs:
        tab.context.close()


def block_non_loopback(context: BrowserContext) -> list[str]:
    """Abort every request the context makes to a host other than loopback; return the list of those URLs."""
    blocked: list[str] = []

    def handle(route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and host not in LOOPBACK_HOSTS:
            blocked.append(url)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    context.route("**/*", handle)
    return blocked


def parse_sse(text: str) -> list[tuple[str, dict]]:
    """Parse a text/event-stream body into (event, data) pairs."""
    events: list[tuple[str, dict]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


class Tab:
    """One browser context + page with outbound traffic blocked; page errors, dialogs and console warnings recorded.

    A dialog is unexpected (recorded in ``dialogs``, dismissed) unless the test sets ``answer_dialogs`` to True
    (accept) or False (dismiss); answered ones go to ``answered``.
    """

    def __init__(self, browser: Browser, **context_args: Any) -> None:
        self.context = browser.new_context(locale="zh-CN", **context_args)
        self.blocked = block_non_loopback(self.context)
        self.page = self.context.new_page()
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        self.answer_dialogs: bool | None = None
        self.answered: list[str] = []
        self.warnings: list[str] = []
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

        def on_dialog(dialog: Dialog) -> None:
            if self.answer_dialogs is None:
                self.dialogs.append(dialog.message)
                dialog.dismiss()
                return
            self.answered.append(dialog.message)
            if self.answer_dialogs:
                dialog.accept()
            else:
                dialog.dismiss()

        def on_console(message: ConsoleMessage) -> None:
            if message.type in ("warning", "error"):
                self.warnings.append(message.text)

        self.page.on("dialog", on_dialog)
        self.page.on("console", on_console)
        self.page.set_default_timeout(15_000)

    def assert_clean(self) -> None:
        assert self.blocked == [], f"page tried to reach non-loopback hosts: {self.blocked}"
        assert self.page_errors == [], f"uncaught page errors: {self.page_errors}"
        assert self.dialogs == [], f"unexpected dialogs: {self.dialogs}"
