"""Which speeches a question names: by speaker, by (part of) title, by region, and follow-up rewriting.

A question that names 浙江 or 李国龙 is about that report or speaker; the retriever ranks those passages
first and the composer labels answers that draw on several speeches. Region names are compared without
their administrative suffix (浙江 = 浙江省, 广西 = 广西壮族自治区): that is how people shorten them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from data.records import Speech

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
# Administrative suffixes of Chinese region names, longest first (grammar of place names, not a corpus list).
_REGION_SUFFIX = re.compile(
    r"(壮族自治区|回族自治区|维吾尔自治区|特别行政区|自治区|自治州|省|市|区|县|州|盟|旗)$"
)
_REGION_IN_TITLE = re.compile(r"(?:\d{4}年)?([\u4e00-\u9fff]{2,12}?(?:省|市|自治区|特别行政区|区|县))")


def region_core(name: str) -> str:
    """浙江省 -> 浙江; 广西壮族自治区 -> 广西; 丰台区 -> 丰台. Names of two characters or fewer stay whole."""
    core = _REGION_SUFFIX.sub("", name.strip())
    return core if len(core) >= 2 else name.strip()


def speech_region(sp: Speech) -> str:
    """The speech's region: its ``region`` field, else a region named at the start of its title."""
    region = str(getattr(sp, "region", "") or (getattr(sp, "extra", None) or {}).get("region", "")).strip()
    if region:
        return region
    m = _REGION_IN_TITLE.match(sp.title)
    return m.group(1) if m else ""


def speech_label(sp: Speech) -> str:
    """How an answer names the speech a sentence comes from: its region, else its speaker, else its title."""
    return speech_region(sp) or sp.speaker or sp.title


def mentioned_speeches(question: str, speeches: Mapping[str, Speech]) -> tuple[str, ...]:
    """Speeches the question names by speaker name, by (part of) title, or by region, in question order."""
    q = _PUNCT.sub("", question)
    quoted = [_PUNCT.sub("", m) for m in re.findall(r"《([^》]+)》", question)]
    found: dict[str, int] = {}
    for sid, sp in speeches.items():
        title = _PUNCT.sub("", sp.title)
        pos = -1
        if sp.speaker and sp.speaker in q:
            pos = q.index(sp.speaker)
        elif len(title) >= 4 and title in q:
            pos = q.index(title)
        elif any(len(t) >= 4 and (t in title or title in t) for t in quoted):
            pos = 0
        else:
            region = speech_region(sp)
            core = region_core(region) if region else ""
            if core and core in q:
                pos = q.index(core)
        if pos >= 0:
            found[sid] = pos
    return tuple(sorted(found, key=lambda s: found[s]))


def rewrite_follow_up(
    question: str, previous: str, speeches: Mapping[str, Speech]
) -> tuple[str, tuple[str, ...]] | None:
    """A follow-up that names a new subject ("那江苏省呢？" after a question about 浙江) is the previous
    question with its subject replaced; returns (rewritten question, speeches it names) or None."""
    new = mentioned_speeches(question, speeches)
    old = mentioned_speeches(previous, speeches)
    if not new or not old or set(new) & set(old):
        return None
    rewritten = previous
    target = _subject_name(speeches[new[0]], question)
    for sid in old:
        for name in _names_of(speeches[sid]):
            if name and name in rewritten:
                rewritten = rewritten.replace(name, target)
    if rewritten == previous:
        return None
    return rewritten, new


def _names_of(sp: Speech) -> Sequence[str]:
    region = speech_region(sp)
    names = [region, region_core(region)] if region else []
    if sp.speaker:
        names.append(sp.speaker)
    return sorted({n for n in names if n}, key=len, reverse=True)


def _subject_name(sp: Speech, question: str) -> str:
    for name in _names_of(sp):
        if name in question:
            return name
    return _names_of(sp)[0] if _names_of(sp) else sp.title
