"""The knowledge base behind /v1/admin: list the speeches served, add uploaded files as a job, remove one.

Every write goes through an ``IndexWriter`` (today qa.index's whole-directory rebuilds; the segment
store's handle drops in the same place), then the ``ServiceHolder`` is refreshed, so when a job says
``done`` or a DELETE returns, the server already answers from the version it names.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from api.jobs import Job, JobFailed, JobQueue
from api.live import ServiceHolder
from api.uploads import Upload, UploadLimits
from data.errors import IndexNotFoundError, NotFoundError, NotReadyError
from data.load import load_paths
from data.parse import make_speech
from data.records import Speech
from embeddings.cache import EmbeddingCache
from embeddings.encoder import Encoder
from qa import catalog
from qa.index import ProgressFn, add_to_index, build_index, remove_from_index
from qa.stores.base import Manifest

log = logging.getLogger(__name__)

METADATA_FIELDS = frozenset({"title", "speaker", "role", "date", "region"})
_STALE_UPLOAD_S = 3600


class IndexWriter(Protocol):
    def add(self, speeches: Sequence[Speech], progress: ProgressFn | None = None) -> Manifest: ...

    def remove(self, speech_ids: Sequence[str]) -> Manifest: ...


class DirectoryWriter:
    """Writes through qa.index: load the current version, build the new one beside it, rename it in."""

    def __init__(self, index_dir: Path, encoder: Encoder, open_cache: Callable[[], EmbeddingCache]) -> None:
        self.index_dir = index_dir
        self.encoder = encoder
        self.open_cache = open_cache

    def add(self, speeches: Sequence[Speech], progress: ProgressFn | None = None) -> Manifest:
        cache = self.open_cache()
        try:
            try:
                return add_to_index(self.index_dir, speeches, self.encoder, cache=cache, progress=progress)
            except IndexNotFoundError:
                # No index yet: the first upload builds it.
                return build_index(speeches, self.encoder, self.index_dir, cache=cache, progress=progress)
        finally:
            cache.close()

    def remove(self, speech_ids: Sequence[str]) -> Manifest:
        return remove_from_index(self.index_dir, speech_ids, self.encoder)


def with_metadata(speeches: Sequence[Speech], meta: Mapping[str, str], source: str) -> list[Speech]:
    """The form's title/speaker/role/date/region override what the document states. A new title or
    speaker is a new speech id (ids hash both), which is what makes an upload replace the speech with
    the same title and speaker."""
    out = []
    for sp in speeches:
        new = make_speech(
            title=meta.get("title") or sp.title,
            speaker=meta.get("speaker") or sp.speaker,
            role=meta.get("role") or sp.role,
            date=meta.get("date") or sp.date,
            source=source,
            paragraphs=[(p.section, p.text) for p in sp.paragraphs],
            region=meta.get("region") or sp.region,
            place=sp.place,
            extra=dict(sp.extra),
        )
        out.append(new)
    return out


class KnowledgeBase:
    def __init__(
        self,
        index_dir: Path,
        holder: ServiceHolder,
        writer: IndexWriter,
        limits: UploadLimits,
        jobs: JobQueue | None = None,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.holder = holder
        self.writer = writer
        self.limits = limits
        self.jobs = jobs or JobQueue()
        # One writer at a time in this process: an upload job and a DELETE must not both load version N
        # and each write N + their change (the later rename would drop the other's change).
        self._writing = threading.Lock()

    # -- reading --------------------------------------------------------------------------------------

    def documents(self) -> dict:
        svc = self.holder.current()
        if svc is None:
            raise NotReadyError("the index is not loaded", fix="see /readyz for the cause")
        entries = catalog.read_catalog(self.index_dir)
        docs = []
        for sp in svc.index.speeches.values():
            entry = entries.get(sp.speech_id, {})
            docs.append(
                {
                    "speech_id": sp.speech_id,
                    "title": sp.title,
                    "speaker": sp.speaker,
                    "role": sp.role,
                    "date": sp.date,
                    "region": getattr(sp, "region", "") or entry.get("region", ""),
                    "source": entry.get("file") or sp.source,
                    "paragraphs": len(
                        svc.index.speech_rows(sp.speech_id)
                    ),  # snapshot speeches carry no paragraphs
                    "ingested_at": entry.get("ingested_at", ""),
                }
            )
        return {"documents": docs, "index_version": svc.index_version}

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no job with id {job_id!r}", fix="finished jobs are kept for a while only")
        return job

    # -- writing --------------------------------------------------------------------------------------

    def new_upload_dir(self) -> Path:
        """A fresh folder beside the index (same file system), for one upload request."""
        self.index_dir.parent.mkdir(parents=True, exist_ok=True)
        self._clear_stale_uploads()
        return self.index_dir.parent / f".{self.index_dir.name}.upload-{uuid.uuid4().hex[:12]}"

    def submit_upload(self, upload: Upload, folder: Path) -> Job:
        return self.jobs.submit(
            lambda job: self._ingest(job, upload, folder),
            cleanup=lambda: shutil.rmtree(folder, ignore_errors=True),
        )

    def remove(self, speech_id: str) -> dict:
        with self._writing:
            manifest = self.writer.remove([speech_id])
            catalog.forget(self.index_dir, [speech_id])
            self.holder.refresh()
        return {"removed": speech_id, "index_version": manifest.version}

    def _ingest(self, job: Job, upload: Upload, folder: Path) -> None:
        """Parse every uploaded file (a bad one is a job error, the others go on), then add them all in
        one index write, so the upload is in the index completely or not at all."""
        speeches: list[Speech] = []
        file_of: dict[str, str] = {}
        for f in upload.files:
            # An upload is reported per file: a bad JSONL line is skipped with its reason, like a bad file.
            report = load_paths([f.path], skip_bad=True)
            for where, reason in report.skipped:
                job.error(_display(where, f.path.parent, f.name), reason)
            found = with_metadata(report.speeches, upload.fields, source=f.name)
            for sp in found:
                file_of[sp.speech_id] = f.name
            speeches.extend(found)
        if not speeches:
            raise JobFailed("no speech could be read from the upload; nothing was changed")
        ids = [sp.speech_id for sp in speeches]
        if len(set(ids)) != len(ids):
            raise JobFailed(
                "two speeches of this upload would get the same id (same title and speaker); "
                "upload them separately or leave title/speaker to the documents; nothing was changed"
            )
        total = sum(len(sp.paragraphs) for sp in speeches)
        job.paragraphs_total = total

        def progress(done: int, n: int) -> None:
            # The index reports over all its paragraphs, those it already had first; show the upload's.
            job.progress(max(0, total - (n - done)), total)

        with self._writing:
            manifest = self.writer.add(speeches, progress=progress)
            catalog.record_ingest(
                self.index_dir, speeches, region=upload.fields.get("region", ""), file_of=file_of
            )
            self.holder.refresh()
        job.speeches = ids
        job.index_version = manifest.version
        log.info("upload job %s added %s -> index %s", job.job_id, ids, job.index_version)

    def _clear_stale_uploads(self) -> None:
        # Folders a killed server left behind; a young one may belong to another live process.
        for stale in self.index_dir.parent.glob(f".{self.index_dir.name}.upload-*"):
            try:
                if time.time() - stale.stat().st_mtime > _STALE_UPLOAD_S:
                    shutil.rmtree(stale, ignore_errors=True)
            except OSError:
                pass


def _display(where: str, folder: Path, name: str) -> str:
    """A skipped path as the uploader knows it: the file name (and ``:line`` / archive member)."""
    prefix = str(folder) + "/"
    return where[len(prefix) :] if where.startswith(prefix) else name
