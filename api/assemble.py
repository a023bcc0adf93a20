"""Settings -> encoder, embedding cache and AnswerService: the one assembly the app, the CLI and eval share.

The model is imported inside the functions: torch takes seconds that `--compare`, `--url` and `--help` never need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from api.settings import Settings
from embeddings.cache import EmbeddingCache
from embeddings.encoder import Encoder
from qa.service import AnswerService


def build_encoder(settings: Settings, *, for_ingest: bool = False) -> Encoder:
    """The configured encoder. Unless SPEECHQA_THREADS says otherwise, a query runs on one thread and an
    ingest on all cores: measured on 2 cores, one busy, a query took p50 24 ms on 1 thread but 46 ms (max
    204 ms) on 2, whose threads wait on each other (docs/benchmarks.md); batches of paragraphs gain from 2."""
    from embeddings.factory import create_encoder

    threads = settings.threads or ((os.cpu_count() or 1) if for_ingest else 1)
    # A server runs as many queries at once as it has answer slots (cores, or cores / workers).
    concurrency = None if for_ingest else (settings.max_concurrent or os.cpu_count() or 1)
    return create_encoder(
        settings.model,
        runtime=settings.runtime,
        cache_dir=settings.home,
        query_prefix=settings.query_prefix,
        passage_prefix=settings.passage_prefix,
        threads=threads,
        benchmarks_dir=settings.benchmarks_dir,
        concurrency=concurrency,
    )


def open_cache(settings: Settings) -> EmbeddingCache:
    settings.home.mkdir(parents=True, exist_ok=True)
    return EmbeddingCache(settings.cache_path)


def service_options(settings: Settings) -> dict[str, Any]:
    return {
        "composer": settings.composer,
        "answerability_dir": settings.answerability_dir,
        "threshold": settings.min_evidence,
        "top_k": settings.top_k,
        "max_chars": settings.answer_chars,
    }


def build_service(
    settings: Settings,
    index_dir: Path | None = None,
    encoder: Encoder | None = None,
    *,
    segments: dict | None = None,
) -> AnswerService:
    """Load the index (``settings``' own unless given) with the configured encoder and answer options;
    ``segments`` (shared across calls) lets a new version reuse the segments already open."""
    return AnswerService.open(
        index_dir or settings.resolved_index_dir,
        encoder or build_encoder(settings),
        segments=segments,
        **service_options(settings),
    )
