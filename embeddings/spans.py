"""Paragraph and sentence vectors from one forward pass: mean-pool the token vectors inside each sentence span.

Encoding every sentence on its own would run the model over each paragraph's text twice; pooling the
paragraph's contextual token vectors over a sentence's characters costs nothing extra and keeps the
sentence in its context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _normalize(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return (v / np.maximum(n, 1e-12)).astype(np.float32)


def encode_with_spans(
    model: Any,
    prefix: str,
    texts: Sequence[str],
    spans: Sequence[Sequence[tuple[int, int]]],
    *,
    batch_size: int = 16,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(paragraph vectors (n, d), per text an (len(spans[i]), d) array of sentence vectors).

    ``model`` is a sentence-transformers model with mean pooling; ``spans`` are character offsets into each
    text (without the prefix). A sentence cut off by truncation gets None-free fallback: the mean of the
    tokens that did fit, or the paragraph vector when none did.
    """
    import torch

    tokenizer = model.tokenizer
    max_len = getattr(model, "max_seq_length", None) or 512
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    passage: list[Any] = [None] * len(texts)  # every slot is filled by the batch loop below
    sentences: list[Any] = [None] * len(texts)
    shift = len(prefix)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        enc = tokenizer(
            [prefix + texts[i] for i in batch],
            padding=True,
            truncation=True,
            max_length=max_len,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping").numpy()
        features = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.inference_mode():
            out = model.forward(features)
        tokens = out["token_embeddings"].float().numpy()
        mask = enc["attention_mask"].numpy().astype(bool)
        pooled = out["sentence_embedding"].float().numpy()
        for j, i in enumerate(batch):
            passage[i] = _normalize(pooled[j])
            starts, ends = offsets[j, :, 0], offsets[j, :, 1]
            real = mask[j] & (ends > starts)  # special tokens and padding have empty offsets
            rows = []
            for a, b in spans[i]:
                inside = real & (starts < b + shift) & (ends > a + shift)
                rows.append(_normalize(tokens[j][inside].mean(axis=0)) if inside.any() else passage[i])
            sentences[i] = np.vstack(rows) if rows else np.zeros((0, pooled.shape[1]), np.float32)
    return np.vstack(passage), sentences
