"""Test doubles for encoders (never used by the service): a deterministic character n-gram HashEncoder, no model, same vectors on every machine."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numpy as np


@functools.lru_cache(maxsize=1 << 16)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    # SHA-256, not hash(): Python salts str hashes per process, and tests need stable vectors.
    digest = hashlib.sha256(feature.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") % dim, 1.0 if digest[8] & 1 else -1.0


class HashEncoder:
    """Signed feature hashing of character unigrams and bigrams into ``dim`` buckets, L2-normalized.

    Texts that share characters get similar vectors, which is enough to test retrieval logic. Queries and
    passages are encoded the same way (no prefixes), so a question that repeats a passage's words finds it.
    """

    batch_invariant = True  # each text is hashed on its own (qa.batching)

    def __init__(self, dim: int = 256) -> None:
        if dim < 2:
            raise ValueError("dim must be at least 2")
        self._dim = dim

    @property
    def model_id(self) -> str:
        return f"hash-bigram-v1-d{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            chars = [c for c in text.casefold() if not c.isspace()]
            features = chars + [a + b for a, b in zip(chars, chars[1:], strict=False)]
            # An empty text still needs a unit vector; give it one fixed feature.
            for feature in features or ["\x00empty"]:
                bucket, sign = _bucket(feature, self._dim)
                out[row, bucket] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:  # every feature cancelled out
                bucket, sign = _bucket("\x00zero", self._dim)
                out[row, bucket] = sign
            else:
                out[row] /= norm
        return out
