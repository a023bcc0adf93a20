"""Background jobs for the admin API: one worker thread runs them one at a time, in the order submitted."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from data.errors import SpeechQAError

log = logging.getLogger(__name__)


class JobFailed(Exception):
    """Raised by a job's work to end it as failed with ``reason`` (the per-file errors already recorded)."""

    def __init__(self, reason: str, file: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file


@dataclass
class Job:
    job_id: str
    state: str = "queued"  # queued | running | done | failed
    paragraphs_done: int = 0
    paragraphs_total: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    speeches: list[str] = field(default_factory=list)
    index_version: str | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    _first: tuple[float, int] | None = None  # (time, paragraphs done) at the first progress report
    _last_t: float | None = None

    def progress(self, done: int, total: int) -> None:
        """The ``progress(done, total)`` callback of the index functions."""
        now = time.monotonic()
        if self._first is None:
            self._first = (now, done)
        self.paragraphs_done, self.paragraphs_total, self._last_t = done, total, now

    def error(self, file: str, reason: str) -> None:
        self.errors.append({"file": file, "reason": reason})

    def view(self) -> dict:
        """The job as the API shows it: progress with a rate (paragraphs/s encoded now) and an ETA."""
        rate = 0.0
        eta: float | None = None
        if self._first is not None and self._last_t is not None:
            t0, d0 = self._first
            span = self._last_t - t0
            if span > 0 and self.paragraphs_done > d0:
                rate = (self.paragraphs_done - d0) / span
                eta = round(max(0, self.paragraphs_total - self.paragraphs_done) / rate, 1)
        if self.state == "done":
            eta = 0.0
        return {
            "job_id": self.job_id,
            "state": self.state,
            "paragraphs_done": self.paragraphs_done,
            "paragraphs_total": self.paragraphs_total,
            "rate": round(rate, 2),
            "eta_seconds": eta,
            "errors": list(self.errors),
            "speeches": list(self.speeches),
            "index_version": self.index_version,
        }


Work = Callable[[Job], None]


class JobQueue:
    """FIFO of jobs and the one thread that runs them; the last ``keep`` finished jobs stay readable."""

    def __init__(self, keep: int = 200) -> None:
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.Queue[tuple[Job, Work, Callable[[], None] | None] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, work: Work, cleanup: Callable[[], None] | None = None) -> Job:
        job = Job(job_id=uuid.uuid4().hex)
        with self._lock:
            self._jobs[job.job_id] = job
            self._forget_old()
        self._queue.put((job, work, cleanup))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="speechqa-admin-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop after the job it is running (a write in progress still ends atomically)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _forget_old(self) -> None:
        finished = [jid for jid, j in self._jobs.items() if j.state in ("done", "failed")]
        for jid in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[jid]

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, work, cleanup = item
            job.state = "running"
            try:
                work(job)
                job.state = "done"
            except JobFailed as exc:
                job.error(exc.file, exc.reason)
                job.state = "failed"
            except SpeechQAError as exc:
                log.warning("job %s failed: %s", job.job_id, exc)
                job.error("", str(exc))
                job.state = "failed"
            except Exception:  # noqa: BLE001 - one broken job must not stop the worker
                log.exception("job %s failed", job.job_id)
                job.error("", "internal error; see the server log")
                job.state = "failed"
            finally:
                job.finished_at = time.monotonic()
                if cleanup is not None:
                    try:
                        cleanup()
                    except Exception:  # noqa: BLE001
                        log.exception("cleaning up after job %s", job.job_id)
