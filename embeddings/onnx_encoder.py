"""``Encoder``s over an ONNX export: onnxruntime (fp32 or int8) or OpenVINO (its static int8 build); no torch."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

from data.errors import EmbeddingModelError
from embeddings.identity import prefixes_id
from embeddings.onnx_export import (
    FP32_FILE,
    INT8_FILE,
    OPENVINO_FILE,
    OPENVINO_PRECISION,
    TOKENIZER_FILE,
    mean_pool,
    read_export,
)

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 8  # as SentenceTransformerEncoder: small batches pad less on CPU
Precision = Literal["int8", "fp32"]


def _normalize(v: np.ndarray) -> np.ndarray:
    return (v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


class OnnxEncoder:
    """Encodes with an export made by ``embeddings.onnx_export``; safe to call from many threads at once.

    Nothing here takes a lock: the tokenizer is configured once in the constructor and only read after
    (``encode_batch`` borrows it shared), and ``InferenceSession.run`` is thread-safe.

    ``threads`` > 1 (ingest) runs that many batches at once, each on one core, instead of spreading every
    operator of one batch over ``threads`` cores: onnxruntime's intra-op pool meets at a barrier after each of
    the graph's hundreds of operators and spin-waits there, which on 2 shared cores (another job busy) made
    ingest slower than 1 thread. ``threads`` = 1 (a server's queries) is one core per call, no pool.
    Prefixes default to
    the ones the export recorded for the model (the same rules as the torch encoder). ``model_id`` is the
    torch encoder's with ``+onnx-<precision>`` after the model part, so indexes and cached vectors of the
    two runtimes never mix.
    """

    thread_safe = True  # read by qa.service.serialized: no lock around this encoder
    _pad_multiple = 1  # a batch is padded to its longest text, rounded up to a multiple of this

    def __init__(
        self,
        export_dir: str | Path,
        *,
        precision: Precision = "int8",
        threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if precision not in ("int8", "fp32"):
            raise ValueError(f"precision must be 'int8' or 'fp32', not {precision!r}")
        folder = Path(export_dir)
        info = read_export(folder)
        self.export_info = info
        self._batch_size = batch_size
        self._dim = int(info["dim"])
        self._max_len = int(info["max_seq_length"])
        self._pad_id = int(info["pad_token_id"])
        saved = info.get("prefixes") or {}
        self.query_prefix = saved.get("query", "") if query_prefix is None else query_prefix
        self.passage_prefix = saved.get("passage", "") if passage_prefix is None else passage_prefix
        self.batch_invariant = self._batch_invariant(precision)
        prefixes = prefixes_id(self.query_prefix, self.passage_prefix)
        self._model_id = f"{info['base_id']}+{self._runtime(precision)}|{prefixes}"

        # None keeps onnxruntime's default (one intra-op pool over all cores), as before this option existed.
        self._parallel = max(1, threads) if threads is not None else 1
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        try:
            tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
            tokenizer.no_padding()  # batches are padded here, to the longest text in each
            tokenizer.enable_truncation(self._max_len)
        except Exception as exc:  # tokenizers raises its own exception types from Rust
            raise EmbeddingModelError(
                f"Cannot load the tokenizer of the ONNX export at {folder}: {exc}",
                fix="Run `speechqa model` to export it again, or set SPEECHQA_RUNTIME=torch.",
            ) from exc
        self._session = self._open_session(folder, precision, threads)
        self._tokenizer = tokenizer
        # One inference here, on the constructing thread, before any pool thread runs one. The runtime's
        # pybind11 module sets up its numpy API on first use behind a call-once; when two encode threads made
        # that first call at once, both parked in it for good (pybind11 gil_safe_call_once_and_store<npy_api>,
        # 0% CPU: `speechqa train` with every passage cached, so its first inference was a 2-thread batch of
        # questions; twice in a row, 2026-12-06).
        self._run([tokenizer.encode(self.query_prefix)])
        logger.info(
            "loaded embedding model %s (dim %d, %s threads)", self._model_id, self._dim, threads or "default"
        )

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        """Tokens per text (prefix and specials included); longer texts are truncated."""
        return self._max_len

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prefix)

    def encode_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors plus, per text, vectors of its character spans pooled from the same forward pass.

        The semantics of ``embeddings.spans.encode_with_spans``: a span's vector is the mean of the token
        vectors overlapping its characters; a span cut off by truncation falls back to the passage vector.
        """
        texts = list(texts)
        if len(spans) != len(texts):
            raise ValueError("one list of spans per text")
        passages = np.zeros((len(texts), self._dim), dtype=np.float32)
        sentences: list[np.ndarray] = [np.zeros((0, self._dim), np.float32)] * len(texts)
        shift = len(self.passage_prefix)
        encodings = self._tokenizer.encode_batch([self.passage_prefix + t for t in texts])
        for batch, (tokens, mask) in self._run_batches(encodings):
            pooled = mean_pool(tokens, mask)
            for j, i in enumerate(batch):
                passages[i] = pooled[j]
                offsets = np.asarray(encodings[i].offsets, dtype=np.int64).reshape(-1, 2)
                starts, ends = offsets[:, 0], offsets[:, 1]
                real = ends > starts  # special tokens have empty offsets; padding is past len(offsets)
                own = tokens[j, : len(offsets)]
                rows = []
                for a, b in spans[i]:
                    inside = real & (starts < b + shift) & (ends > a + shift)
                    rows.append(_normalize(own[inside].mean(axis=0)) if inside.any() else pooled[j])
                if rows:
                    sentences[i] = np.vstack(rows).astype(np.float32)
        return passages, sentences

    # ------------------------------------------------------------------------------------------------

    def _runtime(self, precision: Precision) -> str:
        """The runtime part of ``model_id``."""
        return f"onnx-{precision}"

    def _batch_invariant(self, precision: Precision) -> bool:
        """Whether a text gets the same vector in any batch (``qa.batching``): fp32 does (padding is masked);
        dynamic int8 quantizes each batch's activations together, so a question's vector would depend on its
        batch-mates."""
        return precision == "fp32"

    def _open_session(self, folder: Path, precision: Precision, threads: int | None) -> Any:
        import onnxruntime as ort

        try:
            options = ort.SessionOptions()
            if threads is not None:
                options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            model_file = folder / (INT8_FILE if precision == "int8" else FP32_FILE)
            return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types from C++
            raise EmbeddingModelError(
                f"Cannot load the ONNX export at {folder}: {exc}",
                fix="Run `speechqa model` to export it again, or set SPEECHQA_RUNTIME=torch.",
            ) from exc

    def _infer(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Token vectors (b, t, d) of one padded batch."""
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        if len(texts) == 1:  # the query hot path: no thread pool round trip in encode_batch
            encodings = [self._tokenizer.encode(prefix + texts[0])]
        else:
            encodings = self._tokenizer.encode_batch([prefix + t for t in texts])
        for batch, (tokens, mask) in self._run_batches(encodings):
            out[batch] = mean_pool(tokens, mask)
        return out

    def _batches(self, encodings: Sequence[Any]) -> list[list[int]]:
        """Indices in batches of similar token length, so a batch pads little."""
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        return [order[s : s + self._batch_size] for s in range(0, len(order), self._batch_size)]

    def _run_batches(
        self, encodings: Sequence[Any]
    ) -> Iterator[tuple[list[int], tuple[np.ndarray, np.ndarray]]]:
        """(batch indices, ``_run`` of that batch) in order; with ``threads`` > 1 up to that many batches run at
        once while the caller pools the finished ones (a few batches ahead at most, to bound memory)."""
        batches = self._batches(encodings)

        def run(batch: list[int]) -> tuple[np.ndarray, np.ndarray]:
            return self._run([encodings[i] for i in batch])

        if self._parallel == 1 or len(batches) == 1:
            for b in batches:
                yield b, run(b)
            return
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._parallel, thread_name_prefix="onnx-encode")
        ahead = 2 * self._parallel
        pending: list[tuple[list[int], Future]] = []
        for b in batches:
            pending.append((b, self._pool.submit(run, b)))
            if len(pending) >= ahead:
                done, future = pending.pop(0)
                yield done, future.result()
        for b, future in pending:
            yield b, future.result()

    def _run(self, encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(token vectors (b, t, d), attention mask (b, t)) for one batch padded to its longest text."""
        width = max(len(e.ids) for e in encodings)
        width = -(-width // self._pad_multiple) * self._pad_multiple
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return self._infer(ids, mask), mask


class OpenVinoEncoder(OnnxEncoder):
    """Queries and passages on OpenVINO running the export's static int8 build (``model.ov-int8.xml``, made by
    ``embeddings.onnx_export``): the same tokenizer, batching and pooling as ``OnnxEncoder``, no onnxruntime.

    Measured for issue 10 on the 2-core EPYC (one thread, quiet machine, /tmp experiments of 2026-12-06):
    on 64 CMRC2018 dev paragraphs in batches of 8 this build does 15.3 passages/s (17.9 with the bf16 hint)
    against 9.3-10.4 for onnxruntime's dynamic int8, and is closer to fp32 (cosine mean 0.9991-0.9994, min
    0.9987, against 0.9974 / 0.9949). A short question takes p50 2.94 ms when padded to a multiple of 8
    tokens against 3.16 ms on onnxruntime int8 (3.95 ms unpadded: see ``_pad_multiple``).

    Its activation scales are fixed at calibration, so a text's vector does not depend on the other texts in
    its batch or on padding (cosine >= 0.9999 alone vs in a batch of 8, over 313 questions; 0 of 215 answers
    changed): queries may be batched (``batch_invariant``, ``qa.batching``), which dynamic int8 may not.

    It runs ``threads`` streams of one thread each, so the ``threads`` batches the base class runs at once
    each get a core (as with onnxruntime); every calling thread has its own InferRequest (a request is not
    safe to share between threads), so nothing is locked per batch. ``model_id`` says ``+openvino-int8``:
    its vectors must not mix with onnx-int8's in an index or the embedding cache.
    """

    # Padding a batch to a multiple of 8 tokens: one question p50 2.94 ms against 3.95 ms padded to its own
    # length (x16: 3.16, x32: 3.05; bf16 hint, 80 gold questions, /tmp experiment of 2026-12-06). Fewer
    # distinct shapes reuse OpenVINO's compiled kernels; the masked padding changes no vector.
    _pad_multiple = 8

    def __init__(
        self,
        export_dir: str | Path,
        *,
        threads: int | None = None,
        concurrency: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
    ) -> None:
        self._ir = Path(export_dir) / OPENVINO_FILE
        if not self._ir.is_file():
            raise EmbeddingModelError(
                f"The ONNX export at {export_dir} has no OpenVINO build ({OPENVINO_FILE}).",
                fix="Run `speechqa model` to build it, or set SPEECHQA_RUNTIME=onnx-int8.",
            )
        self._concurrency = concurrency  # read by _open_session, which the base constructor calls
        self._local = threading.local()  # .request: this thread's InferRequest
        super().__init__(
            export_dir,
            precision="int8",
            threads=threads,
            batch_size=batch_size,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
        )

    def _runtime(self, precision: Precision) -> str:
        return "openvino-int8"

    def _batch_invariant(self, precision: Precision) -> bool:
        return True  # its activation scales are static

    def _infer(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._session.create_infer_request()
        return request.infer({"input_ids": ids, "attention_mask": mask})[0]

    def _open_session(self, folder: Path, precision: Precision, threads: int | None) -> Any:
        """The compiled OpenVINO model (compiled here, at start-up, so a broken build fails loudly then)."""
        import openvino as ov

        # f32 on every CPU: the same vectors everywhere, which the answerability model's thresholds rely on
        # (OPENVINO_PRECISION says what bf16 did).
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION}
        # One single-thread stream per call that may run at once: ingest runs ``threads`` batches side by side,
        # a server process as many answers as it has slots (``concurrency``, api/assemble.build_encoder).
        # Requests from more threads than streams queue: 2 threads got 328-386 questions/s from 1 stream and
        # 525-532 from 2. But a stream costs a lone question a hand-over: p50 2.73-2.95 ms on 1 stream, 3.29-
        # 3.59 ms on 2 (onnxruntime 2.56-3.42), so a worker with one slot gets one stream.
        # Never pinned: OpenVINO pins stream i to core i, so two worker processes both ran on core 0
        # (10.9 + 11.2 passages/s side by side against 16.9 + 16.9 unpinned). /tmp experiments, 2026-12-06.
        streams = self._concurrency or max(1, threads or 1, os.cpu_count() or 1)
        config |= {"NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": streams, "ENABLE_CPU_PINNING": False}
        try:
            compiled = ov.Core().compile_model(self._ir, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses from C++
            raise EmbeddingModelError(
                f"Cannot load the OpenVINO build at {self._ir}: {exc}",
                fix="Run `speechqa model` to export it again, or set SPEECHQA_RUNTIME=onnx-int8.",
            ) from exc
        logger.info("compiled the OpenVINO model %s (%s)", self._ir, config)
        return compiled
