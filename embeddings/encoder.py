"""The encoder protocol every index and retriever talks to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Turns text into L2-normalized float32 vectors; queries and passages may be encoded differently."""

    @property
    def model_id(self) -> str:
        """Identifies model + preprocessing; part of the index manifest and the embedding-cache key."""
        ...

    @property
    def dim(self) -> int: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row unit length."""
        ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row unit length."""
        ...
