"""Questions about the speeches themselves, answered from their metadata and cited to the sentence that states it.

Who gave a speech or report ("报告是谁作的"), who holds an office ("浙江省省长是谁"), a speaker's office, when
and where it was given, which speech talks about a topic, how many speeches a speaker gave. The patterns are
Chinese question grammar (谁/哪位/何时/哪篇…), not corpus vocabulary; the office words are the titles of
Chinese government and party posts, which is what "X长是谁" asks about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from data.records import Speech
from qa.lexical import words as segment
from qa.mentions import YEAR
from qa.types import Hit

# Chinese office titles (grammar of "X长是谁"): the last characters of a role that names a post.
_OFFICE = (
    r"(?:省长|市长|区长|县长|州长|镇长|乡长|主席|书记|主任|局长|厅长|部长|总理|委员长|秘书长|院长|行长|署长)"
)
_ROLE_Q = re.compile(r"职务|职位|身份|头衔|担任什么|什么职|哪个单位|哪个部门的")
_AUTHOR_Q = re.compile(
    r"(谁|哪位|何人).{0,14}(讲话|发言|报告|作的|做的|讲的)|(讲话|发言|报告|讲话人|报告人).{0,8}(是谁|谁|哪位)|"
    r"是谁(讲|作|做|发表)|由谁(作|做|发表|讲|宣读)|谁(讲|作|做)的"
)  # "由谁" alone asks about anything done ("马拉松赛由谁承办"): only a speech verb makes it the speech's author
# Who made or said something, asked without naming a speech ("这项工作是谁做的？", "规划是谁负责做的？"), asks about
# the content: the author forms above that end in a verb (作的 / 做的 / 讲的) ask about a speech only when the question
# names one (讲话 / 发言 / 报告, or a title in 《》: "《走好网上群众路线…》是谁讲的？").
_NAMES_A_SPEECH = re.compile(r"讲话|发言|报告|《")
# Who or when of something a speech mentions ("讲话中提到的劳动模范是谁？", "报告提出的目标是什么时候实现？") asks about
# its content, though it names the speech: the speech is followed by what it says before the question word. "谁在讲话中
# 提到了丽泽？" asks who spoke (谁 comes first).
_ABOUT_WHAT_IT_SAYS = re.compile(
    r"(?:讲话|发言|报告)(?:中|里|上)?(?:提到|提出|说|所说|谈到|指出|表扬|表彰|强调|部署|要求|介绍|列举|回顾|中|里)"
    r"[^？?]*?(?:谁|哪位|何人|什么时候|何时|哪一?天|哪一?年|哪年)"
)
_OFFICE_Q = re.compile(rf"(?P<where>[\u4e00-\u9fff]{{0,10}}?)(?P<office>{_OFFICE})(?:是谁|是哪位|叫什么)")
# A meeting is not the speech: "中央经济工作会议什么时候召开？" asks about one the text names.
_WHEN_Q = re.compile(
    r"(讲话|报告|发言).{0,12}(什么时候|何时|哪一?天|哪年|日期|时间)|(什么时候|何时|哪一?天).{0,8}(讲话|报告|发言|作的)"
)
# Where the speech itself was given: the speech is what is located ("报告是在哪次会议上作的", "在哪里发表的讲话"),
# not a thing it names ("报告提到的展览馆建在哪里": a content question).
_WHERE = r"在(?:哪里|哪儿|什么地方|什么会议|哪次会议|哪个会议|何处)"
_WHERE_Q = re.compile(
    rf"(?:讲话|报告|发言)[^，。？?！!]{{0,4}}?(?:是|于)?{_WHERE}|{_WHERE}上?(?:作|做|发表|讲)的?(?:讲话|报告|发言)?"
)
# The kind of speech may stand between the count and the noun: "作了几次政府工作报告". "哪几篇讲话…" asks which.
_COUNT_Q = re.compile(
    r"(作|做|发表|有)了?(几|多少)(次|篇|场|份)[\u4e00-\u9fff]{0,6}?(讲话|报告|发言)|(?<!哪)(几|多少)(篇|次|场|份)(讲话|报告)"
)
# Which speech: by its name, or by the year it was given ("哪一年的报告提到了…").
_WHICH_Q = re.compile(
    r"哪篇|哪个讲话|哪次讲话|哪一篇|什么讲话|讲话的?(题目|标题)|哪份报告|哪个报告|"
    r"哪一?年的?[\u4e00-\u9fff]{0,6}?(?:报告|讲话)"
)


# Which speeches say something, asked by the regions or reports that do ("哪些省份提出建设城市生命线安全工程？"): a
# survey across the speeches, answered with each one's own sentence (qa.compose). Plural only: "哪个省增长最快"
# asks for one. Chinese question grammar (哪些 / 哪几个 + the kind of place or speech), not corpus vocabulary.
_WHICH_SPEECHES_Q = re.compile(
    r"哪(?:些|几个|几)(?:省份|省区市|省市|省区|省|自治区|直辖市|地区|城市|市|(?P<speech>报告|讲话|篇讲话|份报告))"
)


def asks_which_speeches(question: str) -> bool:
    """Whether a question asks which of the speeches (regions, reports) say something."""
    return bool(_WHICH_SPEECHES_Q.search(question))


def asks_which_reports(question: str) -> bool:
    """Whether a survey question asks for the speeches themselves ("哪些报告提到…"), not for regions: any speech
    answers it, one with a region of its own or not."""
    m = _WHICH_SPEECHES_Q.search(question)
    return bool(m and m.group("speech"))


def surveyed_topic(question: str) -> str:
    """What a survey question asks the speeches about, without the regions it asks for: "哪几个省提出发展低空经济？"
    -> "提出发展低空经济？". Each speech's region is its metadata; "省" in a sentence ("省级示范区") is no evidence."""
    return _WHICH_SPEECHES_Q.sub("", question)


@dataclass(frozen=True)
class MetaQuestion:
    kind: str  # role | author | office | when | where | count | speech
    office: str = ""
    where: str = ""


# An office held before, or at another time than the speech ("李国龙之前担任过什么职务？", "前任市长是谁？"): the
# metadata states the office at the time of the speech only, so the content path decides (and refuses when the
# text does not say).
_OTHER_TIME = re.compile(r"之前|以前|此前|曾|原来|原先|过去|先前|当初|历任|前任|上一任|卸任")


def asked_office(question: str) -> str:
    """The office title a "who holds it" question asks about ("北京市委书记是谁？" → 书记), else ""."""
    m = _OFFICE_Q.search(question)
    return m.group("office") if m else ""


def asked_years(question: str) -> set[str]:
    """The years a question names ("孙永文2020年担任什么职务？" → {"2020"})."""
    return set(YEAR.findall(question))


def meta_kind(question: str, mentioned: Sequence[str]) -> MetaQuestion | None:
    """What a question about the speeches themselves asks, or None for a question about their content."""
    m = _OFFICE_Q.search(question)
    if m:
        if _OTHER_TIME.search(question):
            return None
        return MetaQuestion("office", office=m.group("office"), where=m.group("where"))
    if _COUNT_Q.search(question):
        return MetaQuestion("count")
    if mentioned and _ROLE_Q.search(question) and not _OTHER_TIME.search(question):
        return MetaQuestion("role")
    about_content = bool(_ABOUT_WHAT_IT_SAYS.search(question))
    if not about_content and _AUTHOR_Q.search(question) and _NAMES_A_SPEECH.search(question):
        return MetaQuestion("author")
    if not about_content and _WHEN_Q.search(question):
        return MetaQuestion("when")
    if _WHERE_Q.search(question):
        return MetaQuestion("where")
    if _WHICH_Q.search(question):
        return MetaQuestion("speech")
    return None


# Words between a qualifier and the report it qualifies that are grammar, not part of its name ("谁作的专题辅导报告").
_NOT_A_NAME = frozenset(
    "的 了 是 谁 作 做 讲 在 上 这 那 该 篇 次 份 场 个 哪 哪位 这次 这篇 那次 本次".split()
)


def report_inside(question: str, titles: Sequence[str], passages: Sequence[str]) -> bool:
    """Whether a "who gave the report" question asks about a report a speech speaks of, not the speech itself:
    "报告会上是谁作的专题辅导报告" over a speech that says "市委研究室副主任王汝满…作专题辅导报告". The question names
    the report with a qualifier ("专题辅导报告") that the retrieved passages use and no speech's title does;
    "政府工作报告是谁作的" names the speech itself by its title, and "这篇讲话是谁讲的" names no report at all."""
    words = segment(question)
    for i, word in enumerate(words):
        if word not in ("报告", "讲话", "发言"):
            continue
        j = i
        while j > 0 and words[j - 1] not in _NOT_A_NAME and re.fullmatch(r"[\u4e00-\u9fff]+", words[j - 1]):
            j -= 1
        if j == i:
            continue
        name = "".join(words[j : i + 1])
        if any(name in p for p in passages) and not any(name in t for t in titles):
            return True
    return False


def office_holders(speeches: Sequence[Speech], office: str, where: str) -> list[Speech]:
    """Speeches whose speaker's role names ``office`` (and ``where``, e.g. 浙江省, when given)."""
    if where.endswith("副"):  # "管委会副主任是谁": the deputy's office, not the head's
        office, where = "副" + office, where[:-1]
    # The head's office is not its deputy's: "主任" asks for a 管委会主任, not a 管委会副主任.
    holds = re.compile(re.escape(office) if office.startswith("副") else rf"(?<!副){re.escape(office)}")
    place = re.sub(r"(的|现任|目前|现在|今年|2\d{3}年)", "", where)
    out = []
    for sp in speeches:
        if not sp.speaker or not holds.search(sp.role):
            continue
        context = " ".join([sp.role, sp.title, getattr(sp, "region", "") or ""])
        if place and not _place_matches(place, context):
            continue
        out.append(sp)
    return out


def _place_matches(place: str, context: str) -> bool:
    """浙江 matches 浙江省; 内蒙古 matches 内蒙古自治区: compare without administrative suffixes. A body named in
    pieces matches too: "丽泽金融商务区管委会" in "丽泽金融商务区工委书记、管委会主任" (every word of it, of two
    characters or more, is there)."""
    core = re.sub(r"(省|市|区|县|自治区|壮族|回族|维吾尔|特别行政区)$", "", place)
    if not core:
        return False
    if core in context:
        return True
    parts = [w for w in segment(core) if len(w) >= 2]
    return len(parts) >= 2 and all(w in context for w in parts)


def stating_sentence(speech_paragraphs, needles: Sequence[str]) -> tuple[int, int, int] | None:
    """(paragraph position, start, end) of the first sentence that states one of ``needles``."""
    for pos, para in enumerate(speech_paragraphs):
        for s in para.sentences:
            if any(n and n in s.text for n in needles):
                return pos, s.start, s.end
    return None


def lead_for(meta: MetaQuestion, sp: Speech, count: int = 0) -> str:
    """The sentence that answers from metadata; the cited quote follows it."""
    role = f"（{sp.role}）" if sp.role else ""
    title = f"《{sp.title}》"
    if meta.kind == "office":
        return f"{sp.role}是{sp.speaker}，{title}由其作出，原文谈到："
    if meta.kind == "role" and sp.role:
        return f"{sp.speaker}的职务是{sp.role}，{title}开头谈到："
    if meta.kind == "count":
        return f"{sp.speaker or '该讲话人'}在现有资料中共有{count}篇讲话或报告，其中{title}谈到："
    if meta.kind == "when" and sp.date:
        return f"{title}的时间是{sp.date}，原文谈到："
    if meta.kind == "where" and getattr(sp, "place", None):
        return f"{title}是在{getattr(sp, 'place', '')}作出的，原文谈到："
    if meta.kind == "speech":
        who = f"{sp.speaker}{role}的" if sp.speaker else ""
        return f"相关内容出自{who}{title}，原文谈到："
    if sp.speaker:
        return f"{title}的讲话人是{sp.speaker}{role}，原文谈到："
    return f"相关内容出自{title}（讲话人未注明），原文谈到："


def needles_for(meta: MetaQuestion, sp: Speech) -> list[str]:
    """Strings whose sentence states the fact, in order of preference."""
    if meta.kind in ("office", "author", "role", "count"):
        return [sp.speaker, sp.role]
    if meta.kind == "when":
        y, _, rest = sp.date.partition("-")
        return [f"{y}年{int(rest.split('-')[0])}月" if rest else f"{y}年"] if y else []
    if meta.kind == "where":
        return [getattr(sp, "place", "")]
    return []


__all__ = [
    "MetaQuestion",
    "asks_which_reports",
    "asks_which_speeches",
    "surveyed_topic",
    "meta_kind",
    "office_holders",
    "stating_sentence",
    "lead_for",
    "needles_for",
    "Hit",
]
