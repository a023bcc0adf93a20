"""Test double: an in-memory FakeAdminAPI with the admin HTTP contract the admin page is built against.

It is not the real admin API (that one ingests into the real index); it keeps documents in a dict, runs an
upload "job" on the clock, and serves the real /admin page from api.routes.pages. The contract:

    GET    /v1/admin/documents        -> {"documents": [{speech_id, title, speaker, role, date, region, source,
                                          paragraphs, ingested_at}], "index_version"}
    POST   /v1/admin/documents        multipart files (+ title, speaker, role, date, region) -> 202 {"job_id"}
    GET    /v1/admin/jobs/{job_id}    -> {job_id, state, paragraphs_done, paragraphs_total, rate, eta_seconds,
                                          errors: [{file, reason}], speeches, index_version}
    DELETE /v1/admin/documents/{id}   -> {"removed", "index_version"}
    POST   /v1/ask                    {"question"} -> {"answer", "answerable", "citations": [...]}

Every admin call needs ``Authorization: Bearer <key>`` (none: 401, wrong: 403); errors are {"detail", "code"}.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from api.errors import install_error_handlers
from api.routes import pages

ADMIN_KEY = "test-admin-key"
FIELDS = ("title", "speaker", "role", "date", "region")


@dataclass
class FakeJob:
    job_id: str
    started: float
    seconds: float
    total: int
    errors: list[dict[str, str]]
    pending: list[dict[str, Any]]  # documents to add when the job finishes
    speeches: list[str] = field(default_factory=list)
    state: str = "queued"

    def view(self, index_version: str) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        queued = min(0.2, self.seconds / 4)
        if self.state in ("done", "failed"):
            done = self.total
        elif elapsed < queued:
            done = 0
        else:
            self.state = "running"
            done = min(self.total, int(self.total * (elapsed - queued) / (self.seconds - queued)))
        running = max(elapsed - queued, 1e-3)
        rate = done / running if done else 0.0
        return {
            "job_id": self.job_id,
            "state": self.state,
            "paragraphs_done": done,
            "paragraphs_total": self.total,
            "rate": round(rate, 2),
            "eta_seconds": round((self.total - done) / rate, 1) if rate else None,
            "errors": self.errors,
            "speeches": self.speeches,
            "index_version": index_version,
        }


@dataclass
class FakeAdminStore:
    """Documents, paragraphs and jobs, in memory."""

    job_seconds: float = 1.5
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    paragraphs: dict[str, list[str]] = field(default_factory=dict)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    version: int = 1
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Authorization

    @property
    def index_version(self) -> str:
        return f"fake-v{self.version}"

    def tick(self, job: FakeJob) -> dict[str, Any]:
        view = job.view(self.index_version)
        if job.state == "running" and view["paragraphs_done"] >= job.total:
            for doc in job.pending:
                self.paragraphs[doc["speech_id"]] = doc.pop("_paragraphs")
                self.documents[doc["speech_id"]] = doc
                job.speeches.append(doc["speech_id"])
            job.state = "done" if job.speeches or not job.errors else "failed"
            if job.speeches:
                self.version += 1
            view = job.view(self.index_version)
        return view


def _multipart(content_type: str, body: bytes) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """Files and form fields of a multipart/form-data body (stdlib parser: the double needs no extra package)."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    files: list[tuple[str, bytes]] = []
    form: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files.append((part.get_filename() or "", payload))
        elif name:
            form[str(name)] = payload.decode("utf-8")
    return files, form


def _document(name: str, data: bytes, form: dict[str, str], single: bool) -> dict[str, Any] | str:
    """A document for one uploaded file, or the reason it is skipped."""
    if not data.strip():
        return "empty file"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    paragraphs = [line.strip() for line in text.splitlines() if line.strip()]
    first = paragraphs[0].lstrip("# ").strip()
    return {
        "speech_id": "s" + hashlib.sha256(name.encode() + data).hexdigest()[:8],
        "title": (form.get("title") if single else None) or first or name,
        "speaker": form.get("speaker", ""),
        "role": form.get("role", ""),
        "date": form.get("date", ""),
        "region": form.get("region", ""),
        "source": name,
        "paragraphs": len(paragraphs),
        "ingested_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "_paragraphs": paragraphs,
    }


def create_fake_admin_app(
    *, key: str = ADMIN_KEY, admin_enabled: bool = True, job_seconds: float = 1.5
) -> FastAPI:
    """The fake app; ``app.state.store`` is its FakeAdminStore. ``admin_enabled=False``: no admin routes (404)."""
    store = FakeAdminStore(job_seconds=job_seconds)
    app = FastAPI(title="FakeAdminAPI (test double)")
    app.state.store = store
    install_error_handlers(app)
    app.include_router(pages.router)

    @app.middleware("http")
    async def _record(request: Request, call_next):  # type: ignore[no-untyped-def]
        store.requests.append((request.method, request.url.path, request.headers.get("authorization")))
        return await call_next(request)

    def require_key(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise HTTPException(401, "an admin key is required (Authorization: Bearer <key>)")
        if auth.removeprefix("Bearer ") != key:
            raise HTTPException(403, "the admin key is not valid")

    admin = APIRouter(prefix="/v1/admin", dependencies=[Depends(require_key)])

    @admin.get("/documents")
    def list_documents() -> dict[str, Any]:
        docs = sorted(store.documents.values(), key=lambda d: d["ingested_at"])
        return {"documents": docs, "index_version": store.index_version}

    @admin.post("/documents", status_code=202)
    async def upload(request: Request) -> dict[str, str]:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise HTTPException(422, "send the files as multipart/form-data")
        files, form = _multipart(content_type, await request.body())
        if not files:
            raise HTTPException(422, "no files: send one or more `files`")
        pending, errors = [], []
        for name, data in files:
            doc = _document(name, data, form, single=len(files) == 1)
            if isinstance(doc, str):
                errors.append({"file": name, "reason": doc})
            else:
                pending.append(doc)
        job_id = f"job-{len(store.jobs) + 1}"
        total = sum(d["paragraphs"] for d in pending)
        store.jobs[job_id] = FakeJob(job_id, time.monotonic(), store.job_seconds, total, errors, pending)
        return {"job_id": job_id}

    @admin.get("/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        if job_id not in store.jobs:
            raise HTTPException(404, f"no job {job_id}")
        return store.tick(store.jobs[job_id])

    @admin.delete("/documents/{speech_id}")
    def delete(speech_id: str) -> dict[str, str]:
        if speech_id not in store.documents:
            raise HTTPException(404, f"no speech {speech_id}")
        del store.documents[speech_id]
        store.paragraphs.pop(speech_id, None)
        store.version += 1
        return {"removed": speech_id, "index_version": store.index_version}

    if admin_enabled:
        app.include_router(admin)

    @app.post("/v1/ask")
    async def ask(request: Request) -> JSONResponse:
        question = str((await request.json()).get("question", ""))
        best = max(
            ((sid, p) for sid, ps in store.paragraphs.items() for p in ps),
            key=lambda item: len(set(item[1]) & set(question)),
            default=None,
        )
        if best is None or not set(best[1]) & set(question):
            return JSONResponse({"answer": "资料中没有找到相关内容。", "answerable": False, "citations": []})
        doc = store.documents[best[0]]
        citation = {"n": 1, "speech_id": best[0], "speech_title": doc["title"], "speaker": doc["speaker"]}
        citation["quote"] = best[1]
        return JSONResponse({"answer": best[1] + "[1]", "answerable": True, "citations": [citation]})

    return app


__all__ = ["ADMIN_KEY", "FakeAdminStore", "create_fake_admin_app"]
