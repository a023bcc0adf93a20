"""Shared fixtures: offline guard, the built-in corpus, indexes (fake and real encoder), a live server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from data.load import builtin_corpus_dir, load_paths

REPO = Path(__file__).resolve().parent.parent
GOLD = REPO / "data" / "eval" / "gold.jsonl"

_real_connect = socket.socket.connect


def _guarded_connect(self, address):  # type: ignore[no-untyped-def]
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("127."):
            raise RuntimeError(f"test tried to reach {address}: tests must work offline")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Tests must never leave the machine: only loopback connections are allowed."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def speechqa_home() -> Path:
    """Where the converted model and embedding cache live (make install fills it)."""
    return Path(os.environ.get("SPEECHQA_HOME") or Path.home() / ".cache" / "speechqa")


@pytest.fixture(scope="session")
def corpus_speeches():
    return load_paths([builtin_corpus_dir()]).speeches


@pytest.fixture(scope="session")
def fake_encoder():
    from embeddings.testing import HashEncoder

    return HashEncoder(dim=256)


@pytest.fixture(autouse=True)
def _fake_encoder_answers_with_extractive_v1(request, monkeypatch):
    """The answerability model is calibrated for the real embedding model only, and the default composer
    (gated) refuses to start on any other, as a changed SPEECHQA_MODEL must. A test on the fake encoder
    therefore answers with the uncalibrated first-release composer unless it names another."""
    if "fake_encoder" in request.fixturenames:
        monkeypatch.setattr("qa.service.DEFAULT_COMPOSER", "extractive-v1")


@pytest.fixture(scope="session")
def fake_index_dir(tmp_path_factory, corpus_speeches, fake_encoder) -> Path:
    from qa.index import build_index

    path = tmp_path_factory.mktemp("fake") / "index"
    build_index(corpus_speeches, fake_encoder, path)
    return path


@pytest.fixture(scope="session")
def real_encoder():
    """The encoder the server and CLI under test use (SPEECHQA_RUNTIME, default openvino-int8), on 2 threads."""
    from api.assemble import build_encoder
    from api.settings import Settings

    return build_encoder(Settings(home=speechqa_home(), threads=2))


@pytest.fixture(scope="session")
def real_index_dir(tmp_path_factory, corpus_speeches, real_encoder) -> Path:
    from embeddings.cache import EmbeddingCache
    from qa.index import build_index

    path = tmp_path_factory.mktemp("real") / "index"
    home = speechqa_home()
    home.mkdir(parents=True, exist_ok=True)
    build_index(corpus_speeches, real_encoder, path, cache=EmbeddingCache(home / "embed-cache.sqlite"))
    return path


@pytest.fixture(scope="session")
def real_service(real_index_dir, real_encoder):
    from qa.service import AnswerService

    return AnswerService.open(real_index_dir, real_encoder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    index_dir: Path, port: int, extra_env: dict[str, str] | None = None, workers: int = 1
) -> subprocess.Popen:
    env = dict(os.environ, SPEECHQA_HOME=str(speechqa_home()), **(extra_env or {}))
    cmd = [
        sys.executable,
        "-m",
        "cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--index",
        str(index_dir),
        "--workers",
        str(workers),
    ]
    # The server's output goes to a file: a pipe nobody reads fills up (one access-log line per request)
    # and then blocks the server on its next write.
    log = tempfile.NamedTemporaryFile(prefix="speechqa-server-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = Path(log.name).read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not become ready in 300 s")


@pytest.fixture(scope="session")
def live_server(real_index_dir):
    """A real uvicorn server on 127.0.0.1 with the real model and index."""
    port = free_port()
    proc = start_server(real_index_dir, port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
