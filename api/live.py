"""Live index: the server answers from the newest complete index version and swaps to a new one atomically.

The index directory is replaced by a rename when anything changes it (the admin API, or `speechqa ingest
--add/--remove` in another process), so its manifest's (mtime_ns, size, inode) is a cheap fingerprint of
the version on disk. A watcher thread stats it every ``interval_s``; when it changes, the new version is
loaded off the request path and the reference is swapped in one assignment. A request holds the service it
started with to its end, so it finishes on the version it began on; a version that fails to load is logged
and the previous one keeps serving.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from data.errors import IndexCorruptedError, SpeechQAError
from qa.index import MANIFEST
from qa.service import AnswerService

log = logging.getLogger(__name__)

Loader = Callable[[Path], AnswerService]
Signature = tuple[int, int, int]
_NEVER = object()


def manifest_signature(index_dir: Path) -> Signature | None:
    """(mtime_ns, size, inode) of the index's manifest, or None while there is none (mid-swap, or no index)."""
    try:
        st = os.stat(Path(index_dir) / MANIFEST)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ServiceHolder:
    """The AnswerService serving now, and the one place that replaces it."""

    def __init__(
        self,
        index_dir: Path,
        loader: Loader | None = None,
        *,
        service: AnswerService | None = None,
        interval_s: float = 0.5,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.loader = loader
        self.interval_s = interval_s
        self.load_error: SpeechQAError | None = None
        self._service = service
        self._signature = manifest_signature(self.index_dir) if service is not None else None
        self._failed: object = _NEVER  # the signature of the last version that failed to load
        self._lock = threading.Lock()  # one load at a time: the watcher and an admin job may both ask
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> AnswerService | None:
        """The service of the version serving now (None until one has loaded). Reading it never blocks."""
        return self._service

    @property
    def index_version(self) -> str | None:
        svc = self._service
        return svc.index_version if svc is not None else None

    def refresh(self) -> bool:
        """Load the index if its manifest changed since the version serving now; True when it swapped.

        Blocks for as long as the load takes, so call it from a worker thread, never on the event loop."""
        if self.loader is None:
            return False
        with self._lock:
            for _ in range(3):  # the index may change again while it loads; a few retries catch up
                sig = manifest_signature(self.index_dir)
                if self._service is not None and (sig is None or sig == self._signature):
                    return False  # unchanged, or between the two renames of a swap: keep serving
                if sig == self._failed:
                    return False  # this version already failed to load; wait for the next one
                try:
                    service = self.loader(self.index_dir)
                except Exception as exc:  # noqa: BLE001 - no failure of a new version may stop the old one
                    if not isinstance(exc, SpeechQAError):
                        log.exception("unexpected error loading the index at %s", self.index_dir)
                        exc = IndexCorruptedError(f"index at {self.index_dir} cannot be loaded ({exc})")
                    if manifest_signature(self.index_dir) != sig:
                        continue  # replaced while we read it: load the newer one
                    self._failed = sig
                    if self._service is None:
                        self.load_error = exc
                        log.error("index at %s cannot be loaded: %s", self.index_dir, exc)
                    else:
                        log.error(
                            "index at %s changed but the new version cannot be loaded; still serving %s: %s",
                            self.index_dir,
                            self._service.index_version,
                            exc,
                        )
                    return False
                old = self.index_version
                # One assignment: a request sees the old service or the new one, never a mix.
                self._service = service
                self._signature = sig
                self._failed = _NEVER
                self.load_error = None
                if old is None:
                    log.info("serving index %s", service.index_version)
                else:
                    log.info("index changed on disk: now serving %s (was %s)", service.index_version, old)
                return True
            return False

    def set_error(self, exc: SpeechQAError) -> None:
        """Record why there is no service (e.g. the model failed to load, so nothing can be loaded)."""
        self.load_error = exc

    # -- the watcher ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Watch the manifest from a daemon thread (nothing to do when ``interval_s`` is 0)."""
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="speechqa-index-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad version
                log.exception("index watcher: unexpected error while reloading %s", self.index_dir)


__all__ = ["Loader", "ServiceHolder", "manifest_signature"]
