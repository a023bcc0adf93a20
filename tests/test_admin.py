"""The knowledge base over HTTP (/v1/admin) on an in-process app with the fake encoder."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from qa.index import read_manifest
from qa.service import AnswerService

KEY = "admin-secret-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}
SPEECH = """萤火虫观测站建设情况汇报
观测站站长 林晓
2026年5月20日
青蛙湖畔的萤火虫观测站将于明年七月正式开放，每晚接待游客二百人。
观测站还将建设一条长约三公里的夜间步道，步道照明全部采用红色低亮度灯具。
"""
QUESTION = "萤火虫观测站什么时候开放？"


def _admin_paths(app) -> list[tuple[str, str]]:
    """Every (method, path) of the admin router (listed in the app's OpenAPI document only while admin is
    on, so the router's own table is walked)."""
    from api.routes import admin

    return [
        (method, route.path.replace("{job_id}", "x").replace("{speech_id}", "x"))
        for route in admin.router.routes
        for method in sorted(getattr(route, "methods", None) or ())
        if method != "HEAD"
    ]


def test_admin_routes_are_listed_in_the_api_description_only_while_admin_is_on(app_for):
    assert not [p for p in app_for().openapi()["paths"] if p.startswith("/v1/admin")]
    assert [p for p in app_for(admin_key="k").openapi()["paths"] if p.startswith("/v1/admin")]


@pytest.fixture
def app_for(tmp_path, fake_index_dir, fake_encoder):
    def make(**overrides):
        index = tmp_path / "index"
        if not index.exists():
            shutil.copytree(fake_index_dir, index)
        settings = Settings(
            home=tmp_path / "home", reload_interval_s=0, composer="extractive-v1", **overrides
        )
        return create_app(settings, service=AnswerService.open(index, fake_encoder, composer="extractive-v1"))

    return make


@pytest.fixture
def client(app_for):
    with TestClient(app_for(admin_key=KEY)) as c:
        yield c


def _upload(client, files, **form):
    r = client.post("/v1/admin/documents", headers=AUTH, files=[("files", f) for f in files], data=form)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def _wait(client, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/v1/admin/jobs/{job_id}", headers=AUTH).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def _documents(client) -> dict:
    r = client.get("/v1/admin/documents", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def test_every_admin_route_is_404_without_a_configured_admin_key(app_for):
    app = app_for()
    paths = _admin_paths(app)
    assert {p for _, p in paths} >= {"/v1/admin/documents", "/v1/admin/jobs/x", "/v1/admin/ask"}
    with TestClient(app) as c:
        for method, path in paths:
            r = c.request(method, path, headers={"Authorization": "Bearer anything"})
            assert r.status_code == 404 and r.json()["code"] == "not_found", (method, path)


def test_every_admin_route_needs_the_admin_key(client):
    for method, path in _admin_paths(client.app):
        r = client.request(method, path)
        assert r.status_code == 401 and r.json()["code"] == "missing_key", (method, path)
        assert r.headers["www-authenticate"] == "Bearer"
        r = client.request(method, path, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403 and r.json()["code"] == "wrong_key", (method, path)
        r = client.request(method, path, headers={"X-API-Key": KEY + "x"})
        assert r.status_code == 403, (method, path)
    assert client.get("/v1/admin/documents", headers={"X-API-Key": KEY}).status_code == 200
    assert client.get("/v1/admin/documents", headers=AUTH).status_code == 200


def test_upload_adds_the_speech_and_questions_cite_it(client):
    before = _documents(client)
    job = _wait(client, _upload(client, [("观测站.txt", SPEECH.encode())], region="青蛙湖区"))
    assert job["state"] == "done", job
    assert job["errors"] == [] and len(job["speeches"]) == 1
    assert job["paragraphs_done"] == job["paragraphs_total"] == 2
    assert job["index_version"] != before["index_version"]
    docs = _documents(client)
    assert docs["index_version"] == job["index_version"]
    doc = next(d for d in docs["documents"] if d["speech_id"] == job["speeches"][0])
    assert (doc["title"], doc["speaker"], doc["role"], doc["date"]) == (
        "萤火虫观测站建设情况汇报",
        "林晓",
        "观测站站长",
        "2026-05-20",
    )
    assert doc["region"] == "青蛙湖区" and doc["source"] == "观测站.txt" and doc["paragraphs"] == 2
    assert doc["ingested_at"].endswith("Z")
    body = client.post("/v1/admin/ask", headers=AUTH, json={"question": QUESTION}).json()
    assert body["index_version"] == job["index_version"]
    assert body["citations"] and body["citations"][0]["speech_id"] == doc["speech_id"]
    # The public route answers from the same version.
    assert client.post("/v1/ask", json={"question": QUESTION}).json()["index_version"] == job["index_version"]


def test_reupload_encodes_nothing_and_same_title_and_speaker_replaces_the_old_version(client):
    first = _wait(client, _upload(client, [("a.txt", SPEECH.encode())]))
    again = _wait(client, _upload(client, [("a-copy.txt", SPEECH.encode())]))
    assert again["state"] == "done" and again["speeches"] == first["speeches"]
    assert read_manifest(client.app.state.holder.index_dir).encoded_paragraphs == 0
    # Another text under the same title and speaker (from the form, overriding the document) replaces it.
    other = "萤火虫观测站的开放时间推迟到后年三月。\n"
    replaced = _wait(
        client,
        _upload(client, [("b.txt", other.encode())], title="萤火虫观测站建设情况汇报", speaker="林晓"),
    )
    assert replaced["speeches"] == first["speeches"]
    docs = [d for d in _documents(client)["documents"] if d["title"] == "萤火虫观测站建设情况汇报"]
    assert len(docs) == 1 and docs[0]["paragraphs"] == 1 and docs[0]["source"] == "b.txt"


def test_bad_files_are_job_errors_and_change_nothing(client):
    before = _documents(client)["index_version"]
    job = _wait(client, _upload(client, [("empty.txt", b""), ("tool.exe", b"MZ\x00\x01")]))
    assert job["state"] == "failed"
    assert {e["file"] for e in job["errors"]} >= {"empty.txt", "tool.exe"}
    assert _documents(client)["index_version"] == before
    # One bad file next to a good one: the good one is added, the bad one reported.
    job = _wait(client, _upload(client, [("tool.exe", b"MZ"), ("good.txt", SPEECH.encode())]))
    assert job["state"] == "done" and len(job["speeches"]) == 1
    assert [e["file"] for e in job["errors"]] == ["tool.exe"]


def test_file_names_lose_their_path_components(client):
    job = _wait(client, _upload(client, [("../../etc/观测站.txt", SPEECH.encode())]))
    doc = next(d for d in _documents(client)["documents"] if d["speech_id"] == job["speeches"][0])
    assert doc["source"] == "观测站.txt"
    leftovers = list(client.app.state.holder.index_dir.parent.glob(".*upload-*"))
    assert leftovers == []


def test_upload_limits_and_malformed_uploads(app_for):
    with TestClient(app_for(admin_key=KEY, upload_max_file_bytes=1024, upload_max_request_bytes=4096)) as c:
        big = ("big.txt", "字".encode() * 400)
        r = c.post("/v1/admin/documents", headers=AUTH, files=[("files", big)])
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
        many = [("files", (f"{i}.txt", b"x" * 900)) for i in range(5)]
        assert c.post("/v1/admin/documents", headers=AUTH, files=many).status_code == 413
        r = c.post("/v1/admin/documents", headers=AUTH, json={"files": []})
        assert r.status_code == 422 and r.json()["code"] == "invalid_upload"
        r = c.post(
            "/v1/admin/documents", headers=AUTH, files=[("files", ("a.txt", b"x"))], data={"colour": "red"}
        )
        assert r.status_code == 422 and "colour" in r.json()["detail"]
        r = c.post("/v1/admin/documents", headers=AUTH, data={"title": "no files"})
        assert r.status_code == 422
        assert list(c.app.state.holder.index_dir.parent.glob(".*upload-*")) == []


def test_delete_removes_the_speech_and_unknown_ids_are_404(client):
    job = _wait(client, _upload(client, [("观测站.txt", SPEECH.encode())]))
    sid = job["speeches"][0]
    r = client.delete(f"/v1/admin/documents/{sid}", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == sid
    docs = _documents(client)
    assert docs["index_version"] == r.json()["index_version"]
    assert sid not in {d["speech_id"] for d in docs["documents"]}
    body = client.post("/v1/ask", json={"question": QUESTION}).json()
    assert all(c["speech_id"] != sid for c in body["citations"])
    r = client.delete(f"/v1/admin/documents/{sid}", headers=AUTH)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert client.get("/v1/admin/jobs/nope", headers=AUTH).status_code == 404


def test_the_first_upload_into_a_missing_index_builds_it(tmp_path, fake_encoder, corpus_speeches):
    from api.knowledge import DirectoryWriter
    from embeddings.cache import EmbeddingCache

    writer = DirectoryWriter(tmp_path / "new", fake_encoder, lambda: EmbeddingCache(tmp_path / "c.sqlite"))
    manifest = writer.add(corpus_speeches[:1])
    assert manifest.counts["speeches"] == 1
    assert read_manifest(tmp_path / "new").version == manifest.version
