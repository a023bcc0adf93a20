"""Settings -> encoder, embedding cache and AnswerService: the one assembly the app, the CLI and eval share.

The model is imported inside the functions: torch takes seconds that `--compare`, `--url` and `--help` never need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.settings import Settings
from embeddings.cache import EmbeddingCache
from embeddings.encoder import Encoder
from qa.service import AnswerService


def build_encoder(settings: Settings) -> Encoder:
    from embeddings.st_encoder import load_encoder

    return load_encoder(
        settings.model,
        cache_dir=settings.home,
        query_prefix=settings.query_prefix,
        passage_prefix=settings.passage_prefix,
        threads=settings.threads,
    )


def open_cache(settings: Settings) -> EmbeddingCache:
    settings.home.mkdir(parents=True, exist_ok=True)
    return EmbeddingCache(settings.cache_path)


def service_options(settings: Settings) -> dict[str, Any]:
    return {"threshold": settings.min_evidence, "top_k": settings.top_k, "max_chars": settings.answer_chars}


def build_service(
    settings: Settings, index_dir: Path | None = None, encoder: Encoder | None = None
) -> AnswerService:
    """Load the index (``settings``' own unless given) with the configured encoder and answer options."""
    return AnswerService.open(
        index_dir or settings.resolved_index_dir,
        encoder or build_encoder(settings),
        **service_options(settings),
    )
