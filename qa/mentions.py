"""Which speeches a question names: by speaker, by (part of) title, by region, and follow-up rewriting.

A question that names 浙江 or 李国龙 is about that report or speaker; the retriever ranks those passages
first and the composer labels answers that draw on several speeches. Region names are compared without
their administrative suffix (浙江 = 浙江省, 广西 = 广西壮族自治区): that is how people shorten them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from data.records import Speech
from qa.places import SUFFIXES as _SUFFIXES
from qa.places import place_named, region_core

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
# "2023年报告说…", "2024年政府工作报告提出…": a year naming a report (the one given that year), not the period a
# figure is about (grammar of how reports are cited; qa.features reads the period from the other years).
REPORT_YEAR = re.compile(r"((?:19|20)\d\d)\s*年(?:的|度)?(?:[\u4e00-\u9fff]{0,6}?)(?:工作)?报告")
# A calendar year written in digits, in a title or a question ("2025年政府工作报告", "2020年担任什么职务").
YEAR = re.compile(r"((?:19|20)\d\d)\s*年")
# A party congress, by its ordinal as written: "第十九次全国代表大会", "北京市第十三次代表大会", "第十三次党代会", and the
# short form of the national ones, "十九大", "党的二十大" (how reports and people cite them). The short form only from
# 十一 on: "一大批", "十大工程" are not congresses. A speech given at one names it in its opening lines (its
# ``place``) or its title; a question naming it asks about that report.
_CONGRESS = re.compile(r"第([一二三四五六七八九十]{1,3})次(?:全国)?(?:代表大会|党代会)")
_CONGRESS_SHORT = re.compile(
    r"(?<![一二三四五六七八九十第])(十[一二三四五六七八九]|二十[一二三四五六七八九]?)大"
)
# "十九大和二十大", "十八大、十九大" (back to back once punctuation is dropped, as mentioned_speeches reads them).
_COORDINATED = re.compile(r"\s*(?:和|与|、|及|以及|同)?\s*")
_REPORT_AFTER = re.compile(r"(?:上)?的?(?:政治)?报告")  # "十九大报告", "第十九次全国代表大会上的报告"


def _congress_mentions(question: str) -> tuple[dict[str, int], dict[str, int]]:
    """(the congresses a question names, those whose report it cites: "N大报告", "第N次全国代表大会上的报告"), each
    by ordinal with where it names it first."""
    found: dict[str, int] = {}
    reported: dict[str, int] = {}
    mentions = sorted(
        (m for pattern in (_CONGRESS, _CONGRESS_SHORT) for m in pattern.finditer(question)),
        key=lambda m: m.start(),
    )
    for m in mentions:
        found.setdefault(m.group(1), m.start())
    # "十九大和二十大报告": a congress joined to the next by a coordinator shares its report (read right to left).
    cites_report = False
    for i in range(len(mentions) - 1, -1, -1):
        m = mentions[i]
        if _REPORT_AFTER.match(question, m.end()):
            cites_report = True
        elif i + 1 < len(mentions) and _COORDINATED.fullmatch(question, m.end(), mentions[i + 1].start()):
            pass  # cites_report carries over from the congress it is joined to
        else:
            cites_report = False
        if cites_report:
            reported[m.group(1)] = min(m.start(), reported.get(m.group(1), m.start()))
    return found, reported


def congresses_named(question: str) -> dict[str, int]:
    """The congresses a question names, by ordinal ("十九"), with where it names each first. When it cites a
    report of one ("十九大报告说，十八大以来…"), the others are times, not reports asked about: that one alone."""
    found, reported = _congress_mentions(question)
    return reported or found


def speech_congress(sp: Speech) -> str:
    """The congress a speech was given at, by ordinal, as its place, title or subtitle names it ("——在中国共产党第二十
    次全国代表大会上的报告": a document's front matter, data.convert.structure); "" for none."""
    extra = getattr(sp, "extra", None) or {}
    m = _CONGRESS.search(" ".join((sp.place, sp.title, extra.get("subtitle", ""), extra.get("dateline", ""))))
    return m.group(1) if m else ""


_REGION_IN_TITLE = re.compile(r"(?:\d{4}年)?([\u4e00-\u9fff]{2,12}?(?:省|市|自治区|特别行政区|区|县))")


def _metadata_region(sp: Speech) -> str:
    return str(getattr(sp, "region", "") or (getattr(sp, "extra", None) or {}).get("region", "")).strip()


def speech_region(sp: Speech) -> str:
    """The speech's region: its ``region`` field, else a region named at the start of its title."""
    region = _metadata_region(sp)
    if region:
        return region
    m = _REGION_IN_TITLE.match(sp.title)
    return m.group(1) if m else ""


def speech_label(sp: Speech) -> str:
    """How an answer names the speech a sentence comes from: its region, else its speaker, else its title. A
    region read off the title goes without its suffix, the part of the guess most often wrong ("重庆省际包车…"
    is 重庆, not 重庆省)."""
    region = _metadata_region(sp)
    if region:
        return region
    guessed = speech_region(sp)
    return region_core(guessed) if guessed else sp.speaker or sp.title


def speech_labels(speeches: Sequence[Speech]) -> list[str]:
    """A label per quoted sentence's speech (``speech_label``), told apart where two different speeches would
    share one: the 2023 and 2024 reports of 全国 become "全国（2023年）" and "全国（2024年）", and speeches of one
    label and one year are named by their titles."""
    labels = [speech_label(sp) for sp in speeches]
    ids: dict[str, set[str]] = {}
    years: dict[tuple[str, str], set[str]] = {}
    for sp, label in zip(speeches, labels, strict=True):
        ids.setdefault(label, set()).add(sp.speech_id)
        years.setdefault((label, sp.date[:4]), set()).add(sp.speech_id)
    out = []
    for sp, label in zip(speeches, labels, strict=True):
        year = sp.date[:4]
        if len(ids[label]) == 1:
            out.append(label)
        elif year.isdigit() and len(years[(label, year)]) == 1:
            out.append(f"{label}（{year}年）")
        else:
            out.append(sp.title or label)
    return out


class _Names:
    """The names a question can use for the speeches of one mapping, grouped once: speakers and regions are
    few and shared by many speeches, so a question is compared with each name once, not once per speech."""

    def __init__(self, speeches: Mapping[str, Speech]) -> None:
        self.order = {sid: i for i, sid in enumerate(speeches)}
        self.by_speaker: dict[str, list[str]] = {}
        self.by_region: dict[str, list[str]] = {}
        self.titles: list[tuple[str, str]] = []
        self.by_title: dict[
            str, list[str]
        ] = {}  # titles of 4+ characters, found by the question's substrings
        for sid, sp in speeches.items():
            if sp.speaker:
                self.by_speaker.setdefault(sp.speaker, []).append(sid)
            title = _PUNCT.sub("", sp.title)
            self.titles.append((title, sid))
            if len(title) >= 4:
                self.by_title.setdefault(title, []).append(sid)
            region = speech_region(sp)
            core = region_core(region) if region else ""
            if core:
                self.by_region.setdefault(core, []).append(sid)
        # The congress each speech was given at (speech_congress), and the speeches of each.
        self.congress = {
            sid: c for sid, c in ((sid, speech_congress(sp)) for sid, sp in speeches.items()) if c
        }
        self.by_congress: dict[str, list[str]] = {}
        for sid, congress in self.congress.items():
            self.by_congress.setdefault(congress, []).append(sid)
        self.longest_title = max(map(len, self.by_title), default=0)
        # The year each speech was given: its date's, else the first year its title names.
        self.by_year: dict[int, list[str]] = {}
        self.year: dict[str, int] = {}
        for sid, sp in speeches.items():
            head = (sp.date or "")[:4]
            m = YEAR.search(sp.title)
            year = int(head) if head.isdigit() else int(m.group(1)) if m else 0
            if year:
                self.year[sid] = year
                self.by_year.setdefault(year, []).append(sid)


_NAMES: dict[int, tuple[Mapping[str, Speech], _Names]] = {}


def _names(speeches: Mapping[str, Speech]) -> _Names:
    # A snapshot's speech mapping never changes: index it once (keyed by identity, holding the mapping so the
    # id is not reused while cached).
    hit = _NAMES.get(id(speeches))
    if hit is not None and hit[0] is speeches:
        return hit[1]
    names = _Names(speeches)
    if len(_NAMES) >= 4:
        _NAMES.pop(next(iter(_NAMES)))
    _NAMES[id(speeches)] = (speeches, names)
    return names


def unknown_report_years(question: str, speeches: Mapping[str, Speech]) -> list[int]:
    """Years the question names a report by ("2023年政府工作报告…") that no speech here was given in: the
    question is about a report this index does not hold. Empty when some speech's year is unknown (no date,
    no year in its title): that one could be the report."""
    years = {int(m.group(1)) for m in REPORT_YEAR.finditer(_PUNCT.sub("", question))}
    if not years or not speeches:
        return []
    names = _names(speeches)
    if len(names.year) < len(speeches):
        return []
    return sorted(years - set(names.by_year))


def unknown_congress_reports(question: str, speeches: Mapping[str, Speech]) -> list[str]:
    """Congresses whose report the question cites ("十七大报告说…") when this index holds reports of congresses
    but not that one's: as for a report year, any answer would come from another report. Empty when it holds
    none (a corpus of government work reports may quote a congress report; its passages decide)."""
    cited = _congress_mentions(_PUNCT.sub("", question))[1]
    names = _names(speeches) if cited and speeches else None
    if names is None or not names.by_congress:
        return []
    return [c for c in cited if c not in names.by_congress]


def _side(sp: Speech) -> str:
    """What a speech is one side of a comparison as: the congress it was given at (the 19th and 20th congresses'
    reports are two sides, though one man gave both, both of 全国), else its region without the administrative
    suffix, else its speaker, else its title."""
    congress = speech_congress(sp)
    if congress:
        return f"第{congress}次代表大会"
    region = speech_region(sp)
    return region_core(region) if region else sp.speaker or sp.title


def _inside(question: str, outer: str, inner: str) -> bool:
    """Whether the question writes ``inner`` as a place inside ``outer``: the two names back to back, "北京市密云区",
    "湖北省武汉市" (the grammar of Chinese addresses: larger unit first, no word between), and, when both are
    divisions of China, ``inner`` lying inside ``outer`` ("安徽江西湖南三省" lists three provinces)."""
    if re.search(f"{re.escape(outer)}(?:{_SUFFIXES})?{re.escape(inner)}", question) is None:
        return False
    big, small = place_named(outer), place_named(inner)
    return big is None or small is None or big.holds(small)


def compares(mentioned: Sequence[str], speeches: Mapping[str, Speech], question: str = "") -> bool:
    """Whether the speeches a question names are two sides or more: two different regions (compared without
    their suffix, as the question names them: 重庆 = 重庆市), else speakers, else titles. The 2024 and 2025
    reports of 全国, or two speeches of one speaker, are one side: an answer labelled "全国：…全国：…" would name
    nothing. So are notices whose titles read "重庆市…" and "重庆省际…": a region read off a title is a guess,
    and a suffix is the part of it most often wrong (ncp-unanswerable: a question about 重庆 was answered as
    重庆省 against 重庆市, from those speeches alone, and refused). Nor is a place and a place inside it as the
    question writes them ("北京市密云区社保中心…": the notices of 北京 and of 密云 are one side)."""
    sides = {_side(speeches[s]) for s in mentioned if s in speeches}
    if len(sides) >= 2 and question:
        q = _PUNCT.sub("", question)
        sides -= {outer for outer in sides for inner in sides if outer != inner and _inside(q, outer, inner)}
    return len(sides) >= 2


def mentioned_speeches(question: str, speeches: Mapping[str, Speech]) -> tuple[str, ...]:
    """Speeches the question names by speaker name, by (part of) title, or by region, in question order.

    A speech's position is that of its speaker if named, else of its title, else 0 for a quoted 《title》,
    else of its region."""
    q = _PUNCT.sub("", question)
    quoted = [t for t in (_PUNCT.sub("", m) for m in re.findall(r"《([^》]+)》", question)) if len(t) >= 4]
    names = _names(speeches)
    found: dict[str, int] = {}
    for speaker, sids in names.by_speaker.items():
        if speaker in q:
            pos = q.index(speaker)
            found.update((sid, pos) for sid in sids)
    # Titles in the question: look its substrings up (O(len(q) x longest title), not O(speeches)).
    titled: dict[str, int] = {}
    for i in range(len(q)):
        for j in range(i + 4, min(len(q), i + names.longest_title) + 1):
            for sid in names.by_title.get(q[i:j], ()):
                titled.setdefault(sid, i)
    for sid, pos in titled.items():
        found.setdefault(sid, pos)
    if quoted:
        for title, sid in names.titles:
            if sid not in found and any(t in title or title in t for t in quoted):
                found[sid] = 0
    for core, sids in names.by_region.items():
        if core in q:
            pos = q.index(core)
            for sid in sids:
                found.setdefault(sid, pos)
    # A congress names its report unless a year names the report asked about ("2023年报告说，十九大以来…": the
    # congress is a time there).
    if names.by_congress and not REPORT_YEAR.search(q):
        for congress, pos in congresses_named(q).items():
            for sid in names.by_congress.get(congress, ()):
                found.setdefault(sid, pos)
    # A year naming a report ("2023年政府工作报告是谁作的") picks, among the speeches named otherwise, the ones
    # given that year; with no other name, it names the speech given that year when there is exactly one.
    report_years = {int(m.group(1)): m.start() for m in REPORT_YEAR.finditer(q)}
    if report_years:
        of_year = {sid for sid in found if names.year.get(sid) in report_years}
        if of_year:
            found = {sid: pos for sid, pos in found.items() if sid in of_year}
        elif not found:
            for year, pos in report_years.items():
                if len(names.by_year.get(year, ())) == 1:
                    found[names.by_year[year][0]] = pos
    return tuple(sorted(found, key=lambda s: (found[s], names.order[s])))


def firmly_named(question: str, sids: Sequence[str], speeches: Mapping[str, Speech]) -> tuple[str, ...]:
    """Those of ``sids`` (speeches the question names) that it names by what a speech states about itself: its
    speaker's name, its region as its metadata gives it, the year of a report ("2023年报告说…") or the congress it
    was given at ("十九大报告…", as its place or title names it). A region
    guessed from a title ("重庆市税务局关于…" may be one of many notices on 重庆, or its region misread) or a
    piece of a title is not firm."""
    q = _PUNCT.sub("", question)
    report_years = {int(m.group(1)) for m in REPORT_YEAR.finditer(q)}
    congresses = congresses_named(q)
    names = _names(speeches) if report_years or congresses else None
    years = names.year if names and report_years else {}
    congress_of = names.congress if names and congresses else {}
    out = []
    for sid in sids:
        sp = speeches[sid]
        region = _metadata_region(sp)
        if (
            (sp.speaker and sp.speaker in q)
            or (region and region_core(region) in q)  # the core is the region's own start
            or years.get(sid) in report_years
            or congress_of.get(sid) in congresses
        ):
            out.append(sid)
    return tuple(out)


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


def about_one_side(question: str, sid: str, mentioned: Sequence[str], speeches: Mapping[str, Speech]) -> str:
    """``question`` as asked of the side ``sid`` alone: the names of the other speeches it names taken out
    ("吉林和辽宁今年…分别是多少？" → "吉林和今年…分别是多少？" for 吉林). What is left of the list is function
    words, which carry no term; a name ``sid`` shares with another side stays."""
    own = set(_names_of(speeches[sid]))
    others = {n for s in mentioned if s != sid and s in speeches for n in _names_of(speeches[s])} - own
    for name in sorted(others, key=len, reverse=True):
        question = question.replace(name, "")
    return question


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
