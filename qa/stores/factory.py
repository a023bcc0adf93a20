"""Picks store backends by name (from the manifest or a setting): one small class per backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data.errors import SpeechQAError
from qa.stores import bm25, faiss_dense, passages

DENSE = {"faiss": faiss_dense.FaissDenseStore}
LEXICAL = {"bm25-inverted": bm25.InvertedBM25}
PASSAGES = {"columnar": passages.ColumnarPassages}
DEFAULT_BACKENDS = {"dense": "faiss", "lexical": "bm25-inverted", "passages": "columnar"}


def _pick(table: dict[str, Any], name: str, what: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise SpeechQAError(
            f"unknown {what} backend {name!r}", fix=f"use one of {', '.join(sorted(table))}"
        ) from None


def new_dense(backends: dict[str, str], dim: int, kind: str) -> faiss_dense.FaissDenseStore:
    return _pick(DENSE, backends.get("dense", "faiss"), "dense")(dim, kind)


def new_lexical(backends: dict[str, str]) -> bm25.InvertedBM25:
    return _pick(LEXICAL, backends.get("lexical", "bm25-inverted"), "lexical")()


def load_passages(backends: dict[str, str], directory: Path) -> passages.ColumnarPassages:
    return _pick(PASSAGES, backends.get("passages", "columnar"), "passage")(directory)


def load_dense(
    backends: dict[str, str], directory: Path, params: dict[str, Any], vectors: np.ndarray
) -> faiss_dense.FaissDenseStore:
    return _pick(DENSE, backends.get("dense", "faiss"), "dense").load(directory, params, vectors)


def load_lexical(backends: dict[str, str], directory: Path) -> bm25.InvertedBM25:
    return _pick(LEXICAL, backends.get("lexical", "bm25-inverted"), "lexical").load(directory)


def segment_files(backends: dict[str, str], dense_params: dict[str, Any]) -> tuple[str, ...]:
    """The files a segment written by these backends must have."""
    files: tuple[str, ...] = passages.FILES + bm25.FILES
    if dense_params.get("kind", "flat") != "flat":
        files += faiss_dense.FILES_ANN
    return files
