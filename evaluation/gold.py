"""Gold question files: JSONL lines -> GoldItem records; a malformed line is skipped and reported."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.errors import InputFileError
from evaluation.metrics import normalize

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GoldItem:
    """One gold question. A key point is a tuple of variants; it counts as found if any variant appears."""

    id: str
    question: str
    answerable: bool
    key_points: tuple[tuple[str, ...], ...] = ()
    evidence: tuple[str, ...] = ()  # strings a relevant passage contains
    reference_answer: str | None = None
    type: str = ""
    gold_passage_ids: tuple[str, ...] = ()  # passages known to be relevant (benchmarks know them)
    region: str = ""  # the region a question is about (provincial.jsonl), "" when not given
    line: int = 0  # 1-based line in the gold file, 0 when made in code

    @property
    def has_retrieval_gold(self) -> bool:
        return bool(self.gold_passage_ids) or any(normalize(e) for e in self.evidence)


@dataclass(frozen=True, slots=True)
class SkippedLine:
    line: int
    error: str


@dataclass(frozen=True, slots=True)
class GoldSet:
    items: tuple[GoldItem, ...]
    skipped: tuple[SkippedLine, ...] = ()


class _Malformed(ValueError):
    """What is wrong with one gold line; becomes a SkippedLine."""


def _string_list(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Malformed(f'"{key}" must be a list of strings')
    return tuple(v for v in value if v.strip())


def _key_points(obj: Mapping[str, Any]) -> tuple[tuple[str, ...], ...]:
    value = obj.get("key_points", [])
    if value is None:
        value = []
    if not isinstance(value, list):
        raise _Malformed('"key_points" must be a list')
    groups: list[tuple[str, ...]] = []
    for i, point in enumerate(value):
        # A nested list is one fact with several acceptable spellings (RGB's format).
        variants = [point] if isinstance(point, str) else point
        if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
            raise _Malformed(f'"key_points"[{i}] must be a string or a list of strings')
        kept = tuple(v for v in variants if normalize(v))
        if kept:
            groups.append(kept)
    any_of = _string_list(obj, "key_points_any")
    if any_of:
        # "Any reference answer counts" (CMRC's several annotators) is one key point with variants.
        groups.append(tuple(v for v in any_of if normalize(v)))
    return tuple(g for g in groups if g)


def parse_gold_item(obj: object, line: int = 0) -> GoldItem:
    """Validate one decoded gold record; raises ValueError saying what is wrong."""
    if not isinstance(obj, dict):
        raise _Malformed(f"expected a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id).strip() == "":
        raise _Malformed('"id" is missing or empty (a string or number)')
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _Malformed('"question" is missing or empty')
    answerable = obj.get("answerable")
    if not isinstance(answerable, bool):
        raise _Malformed(
            f'"answerable" must be true or false, got {json.dumps(answerable, ensure_ascii=False)}'
        )
    reference = obj.get("reference_answer")
    if reference is not None and not isinstance(reference, str):
        raise _Malformed('"reference_answer" must be a string')
    qtype = obj.get("type", "")
    if qtype is None:
        qtype = ""
    if not isinstance(qtype, str):
        raise _Malformed('"type" must be a string')
    region = obj.get("region", "")
    if region is None:
        region = ""
    if not isinstance(region, str):
        raise _Malformed('"region" must be a string')
    item = GoldItem(
        id=str(raw_id).strip(),
        question=question.strip(),
        answerable=answerable,
        key_points=_key_points(obj),
        evidence=_string_list(obj, "evidence"),
        reference_answer=reference if reference and reference.strip() else None,
        type=qtype,
        gold_passage_ids=_string_list(obj, "gold_passage_ids"),
        region=region.strip(),
        line=line,
    )
    if (
        item.answerable
        and not item.key_points
        and not item.has_retrieval_gold
        and item.reference_answer is None
    ):
        raise _Malformed('an answerable question needs "key_points", "evidence" or "reference_answer"')
    return item


def parse_gold_lines(lines: Iterable[str]) -> GoldSet:
    """Parse gold JSONL; a malformed line is skipped and reported with its line number, the rest is kept."""
    items: list[GoldItem] = []
    skipped: list[SkippedLine] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            continue
        try:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _Malformed(f"invalid JSON: {exc.msg} at column {exc.colno}") from exc
            item = parse_gold_item(obj, lineno)
            if item.id in seen:
                raise _Malformed(f'duplicate id "{item.id}" (first on line {seen[item.id]})')
        except _Malformed as exc:
            skipped.append(SkippedLine(lineno, str(exc)))
            log.warning("gold line %d skipped: %s", lineno, exc)
            continue
        seen[item.id] = lineno
        items.append(item)
    return GoldSet(tuple(items), tuple(skipped))


def load_gold(path: Path) -> GoldSet:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read gold file {path}: {exc}", fix="pass a UTF-8 JSONL file") from exc
    return parse_gold_lines(text.splitlines())
