"""Work on a question alone, done ahead while the question's vector is computed, and taken once.

Most of an answer's time after the encoder is the composer's, and part of that needs the question only: its
names (jieba's part-of-speech HMM, about 0.2 ms) and the answerability model's analysis of it (terms, names,
years, what it asks for). ``AnswerService`` starts that work on a helper thread before it encodes the
question, and the composer takes the result when it needs it, or does the work itself when nothing was
prepared (the CLI, a test, a prepare that failed). The two overlap only in part: the encoder's inference
releases the GIL, its own Python steps wait for it (docs/answerability.md, "The open gate": the gain measured
from none to about 0.4 ms an answer, depending on the harness).

A result is taken once: the same question asked again is worked on again, as if it were new. Results
nobody takes (a question whose retrieval failed, a refusal before the model was asked) are dropped oldest
first beyond ``MAX_WAITING``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_WAITING = 64  # results not yet taken; more than the answers a process runs at once
_MISSING = object()


class Prepared(Generic[T]):
    """``fn(question)``, computed ahead by ``prepare`` and consumed by ``take`` (thread-safe)."""

    def __init__(self, fn: Callable[[str], T], max_waiting: int = MAX_WAITING) -> None:
        self._fn = fn
        self._max = max_waiting
        self._lock = threading.Lock()
        self._done: OrderedDict[str, T] = OrderedDict()

    def prepare(self, question: str) -> None:
        value = self._fn(question)
        with self._lock:
            self._done[question] = value
            self._done.move_to_end(question)
            while len(self._done) > self._max:
                self._done.popitem(last=False)

    def take(self, question: str) -> T:
        with self._lock:
            value = self._done.pop(question, _MISSING)
        if value is _MISSING:
            return self._fn(question)
        return value  # type: ignore[return-value]


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    # A forked child (``serve --workers N``) inherits the pool object but not its threads: start its own.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def start(prepare: Callable[[str], None], question: str) -> Future[None]:
    """Run ``prepare(question)`` on the helper threads; a failure is logged, never raised to the answer."""
    global _pool
    with _pool_lock:
        if _pool is None:
            # Two: one answer per core runs at once (api.guard.WorkGate), each preparing one question.
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="speechqa-prepare")
    return _pool.submit(_guarded, prepare, question)


def _guarded(prepare: Callable[[str], None], question: str) -> None:
    try:
        prepare(question)
    except Exception:  # the composer does the work itself when nothing was prepared
        log.exception("preparing a question failed")
