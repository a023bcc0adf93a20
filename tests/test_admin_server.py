"""Acceptance: the knowledge base changed over HTTP and by the CLI while a real server (real model) keeps serving."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
import types

import httpx
import pytest

from qa.index import load_index, read_manifest

from .conftest import REPO, free_port, speechqa_home, start_server

pytestmark = pytest.mark.slow

KEY = "acceptance-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}

UPLOADED = """青龙湖国际风筝节筹备工作汇报
筹委会主任 周明远
2026年3月2日
第三届青龙湖国际风筝节将于2027年4月18日开幕，预计吸引游客五万人次。
风筝节期间，青龙湖景区将开通六条免费接驳公交线路，连接周边地铁站。
"""
UPLOAD_QUESTION = "青龙湖国际风筝节哪天开幕？"

CLI_ADDED = """白鹭洲湿地保护工作情况
湿地管理处处长 吴海燕
2026年6月1日
白鹭洲湿地今年新建了十二座鸟类观测屋，每座观测屋可容纳二十名观鸟爱好者。
湿地核心区每年三月至六月封闭，为白鹭繁殖留出安静的环境。
"""
CLI_QUESTION = "白鹭洲湿地新建了多少座鸟类观测屋？"


@pytest.fixture(scope="module")
def served(real_index_dir, tmp_path_factory):
    """A real `speechqa serve` with the admin key, on its own copy of the built-in corpus index."""
    index_dir = tmp_path_factory.mktemp("admin-served") / "index"
    shutil.copytree(real_index_dir, index_dir)
    port = free_port()
    proc = start_server(index_dir, port, {"SPEECHQA_ADMIN_KEY": KEY, "SPEECHQA_RELOAD_INTERVAL_S": "0.2"})
    server = types.SimpleNamespace(url=f"http://127.0.0.1:{port}", proc=proc, index_dir=index_dir)
    yield server
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ask(base: str, question: str) -> dict:
    r = httpx.post(f"{base}/v1/ask", json={"question": question}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _wait_job(base: str, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/admin/jobs/{job_id}", headers=AUTH, timeout=10).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_every_admin_route_refuses_requests_without_the_right_key(served):
    spec = httpx.get(f"{served.url}/openapi.json", timeout=10).json()
    routes = [
        (m.upper(), p.replace("{job_id}", "x").replace("{speech_id}", "x"))
        for p, ops in spec["paths"].items()
        if p.startswith("/v1/admin")
        for m in ops
    ]
    assert len(routes) >= 5
    for method, path in routes:
        assert httpx.request(method, served.url + path, timeout=10).status_code == 401, (method, path)
        wrong = httpx.request(method, served.url + path, headers={"X-API-Key": "nope"}, timeout=10)
        assert wrong.status_code == 403 and wrong.json()["code"] == "wrong_key", (method, path)


def test_cli_add_on_the_served_index_is_answered_without_restart(served, tmp_path):
    before = _ask(served.url, CLI_QUESTION)
    assert all(c["speech_title"] != "白鹭洲湿地保护工作情况" for c in before["citations"])
    doc = tmp_path / "白鹭洲.txt"
    doc.write_text(CLI_ADDED, encoding="utf-8")
    env = dict(os.environ, SPEECHQA_HOME=str(speechqa_home()))
    cli = [sys.executable, "-m", "cli", "ingest", "--add", str(doc), "--index", str(served.index_dir)]
    done = subprocess.run(cli, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    new_version = read_manifest(served.index_dir)["index_version"]
    assert new_version != before["index_version"]
    deadline = time.monotonic() + 120
    body = _ask(served.url, CLI_QUESTION)
    while body["index_version"] != new_version and time.monotonic() < deadline:
        time.sleep(0.3)
        body = _ask(served.url, CLI_QUESTION)
    assert body["index_version"] == new_version
    assert body["citations"] and body["citations"][0]["speech_title"] == "白鹭洲湿地保护工作情况", body
    assert "十二座" in body["answer"]
    assert served.proc.poll() is None  # the same server process, never restarted


def test_upload_is_answered_then_delete_takes_it_out_without_restart(served):
    before = _ask(served.url, UPLOAD_QUESTION)
    r = httpx.post(
        f"{served.url}/v1/admin/documents",
        headers=AUTH,
        files=[("files", ("风筝节.txt", UPLOADED.encode("utf-8"), "text/plain"))],
        data={"region": "青龙湖区"},
        timeout=60,
    )
    assert r.status_code == 202, r.text
    job = _wait_job(served.url, r.json()["job_id"])
    assert job["state"] == "done" and job["errors"] == [], job
    (sid,) = job["speeches"]
    assert job["index_version"] != before["index_version"]

    body = _ask(served.url, UPLOAD_QUESTION)
    assert body["index_version"] == job["index_version"]
    assert body["answerable"] and body["citations"][0]["speech_id"] == sid, body
    assert "4月18日" in body["answer"]
    docs = httpx.get(f"{served.url}/v1/admin/documents", headers=AUTH, timeout=10).json()
    doc = next(d for d in docs["documents"] if d["speech_id"] == sid)
    assert doc["region"] == "青龙湖区" and doc["source"] == "风筝节.txt" and doc["ingested_at"]

    r = httpx.delete(f"{served.url}/v1/admin/documents/{sid}", headers=AUTH, timeout=120)
    assert r.status_code == 200 and r.json()["removed"] == sid
    after = _ask(served.url, UPLOAD_QUESTION)
    assert after["index_version"] == r.json()["index_version"]
    assert all(c["speech_id"] != sid for c in after["citations"])
    assert all(h["speech_id"] != sid for h in after["related"])
    assert served.proc.poll() is None


def _unseen_speech(paragraphs: int) -> str:
    """A long speech of text no cache has seen, so the job spends its time encoding."""
    rng = random.Random(time.time_ns())
    chars = "经济社会发展改革开放创新驱动城乡建设生态环境保护民生保障教育医疗文化旅游交通水利农业科技"
    body = [
        "".join(rng.choice(chars) for _ in range(60)) + f"，第{i}项任务编号{rng.randrange(10**9)}。"
        for i in range(paragraphs)
    ]
    return "\n".join(["压力测试专用讲话", "测试员 王测试", *body])


def test_killing_the_server_during_an_upload_leaves_a_loadable_index_with_the_document_all_in_or_out(served):
    """Last in this module: it kills the server."""
    old_manifest = read_manifest(served.index_dir)
    r = httpx.post(
        f"{served.url}/v1/admin/documents",
        headers=AUTH,
        files=[("files", ("长讲话.txt", _unseen_speech(400).encode("utf-8"), "text/plain"))],
        timeout=60,
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 120
    job = {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{served.url}/v1/admin/jobs/{job_id}", headers=AUTH, timeout=10).json()
        if job["state"] != "queued" and job["paragraphs_done"] > 0:
            break
        time.sleep(0.05)
    assert job["state"] == "running", job  # killed in the middle of the job, not after it
    served.proc.kill()  # SIGKILL: no shutdown handler runs
    served.proc.wait(timeout=30)

    manifest = read_manifest(served.index_dir)
    encoder = types.SimpleNamespace(model_id=manifest["model_id"], dim=manifest["dim"])
    index = load_index(served.index_dir, encoder)  # every file checked against its checksum
    added = [sp for sp in index.speeches.values() if sp.title == "压力测试专用讲话"]
    if added:  # fully in: the write finished just before the kill
        assert len(added[0].paragraphs) == 400
    else:  # fully out: the version from before the upload
        assert index.version == old_manifest["index_version"]
