"""Query vectors for the questions waiting for an answer slot, encoded in one batch by whoever gets a slot.

A server process runs one answer per core (``api.guard.WorkGate``); under load the other questions wait on
the event loop. On openvino-int8 a question costs 3.5-4.3 ms alone but 1.9-2.2 ms each in a batch of 8
(``benchmarks/bench_encoder.py --only queries``: the graph's per-call cost is shared), and the encoder is
about half of an answer's CPU. So a request *announces* its question when it arrives, before it
waits for a slot; the request holding a slot encodes its own question together with up to
``MAX_BATCH - 1`` announced ones that nobody is encoding yet, oldest first (the ones next in line), and a
waiting request finds its vector ready when its turn comes. With nobody waiting a question is encoded alone
as before: there is no timer and no added latency.

A question asked by several requests at once is encoded once. A vector lives only while some request that
announced its question is still running.

Only an encoder whose vectors do not depend on what else is in the batch is batched (``batched``): the
dynamic int8 ONNX build quantizes activations per batch, so there a question's vector in a batch differs
from its vector alone (cosine 0.9976 on average, min 0.9951, over 313 questions) by enough to change answers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from embeddings.encoder import Encoder

# Per-question cost stops falling at 8 questions a batch (bench_encoder.py --only queries, openvino-int8, two
# quiet runs on the 2-core EPYC, 2026-12-06: 4.34 / 3.69 / 2.88 / 2.24 / 2.20 and 3.50 / 2.47 / 2.29 / 1.94
# / 2.04 ms at 1 / 2 / 4 / 8 / 16); a bigger batch only makes its first request wait longer for its answer.
MAX_BATCH = 8


class Ticket:
    """One announced question: its text, how many running requests asked it, and its vector once encoded."""

    __slots__ = ("text", "users", "vector", "running", "done")

    def __init__(self, text: str) -> None:
        self.text = text
        self.users = 0
        self.vector: np.ndarray | None = None
        self.running = False  # a request is encoding it in a batch right now
        self.done = threading.Event()


class QueryBatcher:
    """An ``Encoder`` whose single-question ``encode_queries`` batches announced questions (thread-safe).

    Everything else (passages, spans, ``model_id``, ``dim``) goes straight to the wrapped encoder, which
    must itself be safe to call from several threads (``qa.service.serialized`` makes it so).
    """

    thread_safe = True
    batch_invariant = True

    def __init__(self, encoder: Encoder, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._encoder = encoder
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()  # oldest announcement first

    @property
    def model_id(self) -> str:
        return self._encoder.model_id

    @property
    def dim(self) -> int:
        return self._encoder.dim

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities of the wrapped encoder (span pooling for ingest, max_seq_length) stay visible.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._encoder, name)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encoder.encode_passages(texts)

    # -- announcing ---------------------------------------------------------------------------------

    def announce(self, text: str) -> Ticket:
        """Say that ``text`` will be encoded as a query soon; give the ticket back with ``withdraw``."""
        with self._lock:
            ticket = self._tickets.get(text)
            if ticket is None:
                ticket = self._tickets[text] = Ticket(text)
            ticket.users += 1
            return ticket

    def withdraw(self, ticket: Ticket) -> None:
        """The request that announced ``ticket`` has ended (answered, failed or timed out)."""
        with self._lock:
            ticket.users -= 1
            if ticket.users <= 0 and self._tickets.get(ticket.text) is ticket:
                del self._tickets[ticket.text]

    def pending(self) -> int:
        """Announced questions whose requests are still running (for tests and metrics)."""
        with self._lock:
            return len(self._tickets)

    # -- encoding -----------------------------------------------------------------------------------

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if len(texts) == 1:
            with self._lock:
                ticket = self._tickets.get(texts[0])
            if ticket is not None:
                return self._vector(ticket)[None, :]
        return self._encoder.encode_queries(texts)

    def _vector(self, ticket: Ticket) -> np.ndarray:
        while True:
            with self._lock:
                if ticket.vector is not None:
                    return ticket.vector
                if ticket.running:
                    mine, done = None, ticket.done
                else:
                    mine = [ticket] + [
                        t
                        for t in self._tickets.values()
                        if t is not ticket and not t.running and t.vector is None
                    ][: self._max_batch - 1]
                    for t in mine:
                        t.running = True
                        t.done = threading.Event()
            if mine is None:
                done.wait()  # another request is encoding it; if that fails, the loop encodes it here
                continue
            try:
                vectors = self._encoder.encode_queries([t.text for t in mine])
            except BaseException:
                with self._lock:
                    for t in mine:
                        t.running = False
                        t.done.set()
                raise
            with self._lock:
                for t, v in zip(mine, vectors, strict=True):
                    t.vector = np.asarray(v, dtype=np.float32)
                    t.running = False
                    t.done.set()
            return vectors[0].astype(np.float32, copy=False)


def batched(encoder: Encoder) -> Encoder:
    """``encoder`` behind a ``QueryBatcher`` when its vectors do not depend on their batch-mates.

    An encoder says so with ``batch_invariant = True``. One that quantizes activations per batch (the
    dynamic int8 ONNX build) does not: on 215 gold and provincial questions, encoding them in batches of 8
    instead of alone changed 4 refusals and 7 more answers' text. A question must get the same answer
    whoever else is asking, so such an encoder is left unbatched. A ``QueryBatcher`` is returned as it is
    (one inside another would never see the inner one's announcements).
    """
    if isinstance(encoder, QueryBatcher) or not getattr(encoder, "batch_invariant", False):
        return encoder
    return QueryBatcher(encoder)
