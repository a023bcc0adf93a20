"""Document -> Speech: metadata from the front matter, sections from headings and numbering."""

from __future__ import annotations

import re
from pathlib import PurePath

from data.convert.base import Block, Document, Metadata
from data.parse import clean_text, ends_sentence, make_speech, section_level
from data.records import Speech

_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_ONLY_DATE = re.compile(r"^[(（]?\s*" + _DATE.pattern + r"\s*[)）]?$")
_CREDIT = re.compile(r"^(来源|稿源|文章来源|信息来源)\s*[:：]\s*")
# "在浙江省第十四届人民代表大会第三次会议上" -> the place; "上"/"的"/"时" or nothing may close it.
_PLACE = re.compile(
    r"在\s*(?P<place>[^，。,；]{2,60}(?:会议|大会|论坛|座谈会|典礼|仪式|开幕式|闭幕式))\s*(?:上|的|时)?"
)
_ROLE_END = r"(?:代理|代)?(?:省长|市长|主席|区长|州长|县长|盟长|书记|总理|部长|主任|厅长|局长|秘书长)"
_NAME = r"[\u4e00-\u9fff]{2,4}?(?:·[\u4e00-\u9fff]{1,10})?"
# "北京市市长 殷勇同志作…", "安徽省人民政府省长 王清宪作…", "省长 王予波": role, then the name.
_ROLE_NAME = re.compile(
    rf"(?P<role>[\u4e00-\u9fff]{{0,14}}?{_ROLE_END})[\s\u3000]*(?P<name>{_NAME})(?=同志|作|在|的|[，。,、]|\s|$)"
)
# "龚正市长在…": the name, then the role.
_NAME_ROLE = re.compile(rf"^(?P<name>[\u4e00-\u9fff]{{2,3}})(?P<role>{_ROLE_END})(?=在|的|作|$)")
_REGION = re.compile(r"^(?P<region>[\u4e00-\u9fff]{1,10}?(?:特别行政区|自治区|自治州|省|市|盟|地区))")
_DASHES = "—-－─–~～ "
FRONT_MATTER_LINES = 8  # metadata lines are looked for among the first this many blocks only


def join_soft_breaks(text: str) -> str:
    """Join the lines of one paragraph: nothing next to a CJK character, one space between Latin words."""
    if "\n" not in text and "\r" not in text:
        return text
    lines = [ln.strip() for ln in re.split(r"[\r\n]+", text) if ln.strip()]
    out = lines[0] if lines else ""
    for line in lines[1:]:
        out += ("" if is_cjk(out[-1]) or is_cjk(line[0]) else " ") + line
    return out


def is_cjk(ch: str) -> bool:
    return (
        "\u2e80" <= ch <= "\u9fff"
        or "\uf900" <= ch <= "\ufaff"
        or "\uff00" <= ch <= "\uffef"
        or ch in "，。、；：！？“”‘’（）《》【】—…"
    )


def speaker_in(text: str) -> tuple[str, str] | None:
    """(role, name) stated in ``text``, or None."""
    m = _ROLE_NAME.search(text)
    if m:
        return m.group("role"), m.group("name")
    m = _NAME_ROLE.match(text)
    if m and m.group("name")[-1] not in "省市区县州盟":
        return m.group("role"), m.group("name")
    return None


def iso_date(text: str) -> str:
    m = _DATE.search(text)
    if not m:
        return ""
    y, mo, d = (int(g) for g in m.groups())
    return f"{y:04d}-{mo:02d}-{d:02d}"


def region_of(place: str) -> str:
    """The region a place names: "浙江省第十四届人民代表大会第三次会议" -> "浙江省"."""
    m = _REGION.match(place)
    return m.group("region") if m else ""


def read_dateline(text: str) -> Metadata | None:
    """A report's opening line "——2025年1月14日在浙江省第十四届人民代表大会第三次会议上" (often with the
    speaker inside: "…会议上浙江省代省长刘捷作政府工作报告"): date, place, region, role, speaker."""
    line = text.strip(_DASHES)
    if len(line) > 150 or not _DATE.search(line) or not re.search(r"会议|大会|讲话|报告|致辞", line):
        return None
    date = iso_date(line)
    rest = _DATE.sub("\x00", line, count=1)
    place = ""
    m = _PLACE.search(rest)
    if m:
        place = re.sub(r"\s+", "", m.group("place"))
        rest = rest[: m.start()] + "\x00" + rest[m.end() :]
    role = speaker = ""
    for piece in rest.split("\x00"):
        found = speaker_in(piece.strip(_DASHES + "\u3000"))
        if found:
            role, speaker = found
            break
    return Metadata(date=date, place=place, region=region_of(place), role=role, speaker=speaker)


def _speaker_line(text: str) -> tuple[str, str] | None:
    """A line that is only "职务 姓名" ("省长 王予波", "西藏自治区代理主席 嘎玛泽登")."""
    line = text.strip()
    if len(line) > 40 or re.search(r"[。！？，,；;：:]", line):
        return None
    m = _ROLE_NAME.fullmatch(line)
    if m:
        return m.group("role"), m.group("name")
    m = _NAME_ROLE.fullmatch(line)
    return (m.group("role"), m.group("name")) if m else None


def _title_like(text: str) -> bool:
    return (
        0 < len(text) <= 60
        and not ends_sentence(text)
        and section_level(text) is None
        and not _CREDIT.match(text)
        and not re.search(r"[，,]", text)
    )


def read_front_matter(blocks: list[Block]) -> tuple[Metadata, int]:
    """Metadata stated in the opening lines (title, credit, dateline, speaker line, date line) and how many
    blocks that front matter takes. The lines read are kept verbatim in ``extra["front_matter"]``."""
    title = speaker = role = date = place = region = ""
    extra: dict[str, str] = {}
    used: list[str] = []
    i = 0
    while i < min(len(blocks), FRONT_MATTER_LINES):
        text = blocks[i].text
        credit = _CREDIT.match(text)
        spk = _speaker_line(text)
        dateline = None if spk else read_dateline(text)
        if credit:
            rest = text[credit.end() :]
            inner = read_dateline(rest)
            if inner is not None:  # "来源：江西省人民政府2025年1月17日在…会议上省长叶建春作政府工作报告。"
                cut = _DATE.search(rest)
                extra.setdefault("credit", rest[: cut.start() if cut else len(rest)].strip())
                dateline = inner
            else:
                extra.setdefault("credit", rest.strip())
        if dateline is not None:
            date = date or dateline.date
            place = place or dateline.place
            region = region or dateline.region
            if dateline.speaker and not speaker:
                role, speaker = dateline.role, dateline.speaker
            extra.setdefault("dateline", text)
        elif credit:
            pass
        elif spk and not speaker:
            role, speaker = spk
        elif _ONLY_DATE.match(text) and not date:
            date = iso_date(text)
        elif (blocks[i].heading in (None, 0) or not title) and _title_like(text):
            if not title:
                title = text
            elif "subtitle" not in extra and len(text) <= 40:
                extra["subtitle"] = text
            else:
                break
        else:
            break
        used.append(text)
        i += 1
    if used:
        extra["front_matter"] = "\n".join(used)
    meta = Metadata(
        title=title, speaker=speaker, role=role, date=date, place=place, region=region, extra=extra
    )
    return meta, len(used)


def _heading_level(block: Block) -> int | None:
    """A block's section level: its numbering ("一、" 1, "（一）" 2, "1." 3) when it is a short line of its
    own, else the level the file's structure gives it."""
    text = block.text
    short = len(text) <= 40 and not ends_sentence(text) and "，" not in text
    level = section_level(text) if short else None
    if level is not None:
        return level
    if block.heading is not None and block.heading > 0 and len(text) <= 60:
        return block.heading
    return None


def document_to_speeches(doc: Document) -> list[Speech]:
    """One document is one speech: front matter -> metadata, headings -> section paths, the rest ->
    paragraphs. Metadata precedence: front matter > the file's properties > the file name (the CLI's
    overrides are applied over all of them by ``load_paths``)."""
    blocks = [Block(clean_text(b.text.replace("\xa0", " ")), b.heading) for b in doc.blocks]
    blocks = [b for b in blocks if b.text]
    front, n_front = read_front_matter(blocks)
    meta = front.over(doc.metadata)
    sections: list[tuple[int, str]] = []
    paragraphs: list[tuple[str, str]] = []
    for block in blocks[n_front:]:
        level = _heading_level(block)
        if level is not None:
            sections = [(lv, t) for lv, t in sections if lv < level] + [(level, block.text)]
            continue
        paragraphs.append((" / ".join(t for _, t in sections), block.text))
    if not paragraphs:
        return []
    return [
        make_speech(
            title=meta.title or PurePath(doc.name.split("!")[-1]).stem,
            speaker=meta.speaker,
            role=meta.role,
            date=meta.date,
            source=doc.name,
            region=meta.region,
            place=meta.place,
            extra=meta.extra,
            paragraphs=paragraphs,
        )
    ]
