"""The places a question names, from the official list of China's administrative divisions, and whether a text speaks of them.

A question about 苏州, 大连 or 深圳 is about that place: a provincial report's target for the whole of 江苏 does
not answer it, nor does another province's. The retriever finds the nearest passages anyway, on the question's
other words, and the answer would quote them unnamed. So an answer is drawn only from passages that speak of
the place: the passage names it, or its speech is that place's (its region or title). The names are the
divisions' own (``resources/divisions.tsv``, with where it comes from), not words chosen on any question set.

A place is read where it is a word of the question (jieba's segmentation: 长治久安 and 孙中山 name no place),
by its full name at every level (苏州市, 密云区) and, for provinces and prefectures, without its administrative
suffix (苏州, 内蒙古), as people write them; a county's short form is too often a common word (和平, 安康).
Of the places a question names, one that holds another is not asked about ("江苏苏州…" asks about 苏州, by the
divisions' codes); places side by side ("吉林和深圳…") each are. A place naming an event it hosts ("卡塔尔世界杯季军")
is not asked about.

Other countries are places too (``resources/countries.tsv``, ISO 3166-1's Chinese names): "美国CPI上涨了多少？" is
not answered by China's CPI. China itself is not one: a Chinese report speaks of it without naming it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.lexical import names_unasked, word_edges

_TABLE = Path(__file__).with_name("resources") / "divisions.tsv"
_COUNTRIES = Path(__file__).with_name("resources") / "countries.tsv"
_FOREIGN = "ISO"  # the code of a country is ISO plus its alpha-2 code: no division's code starts so
# Administrative suffixes of Chinese region names, longest first (grammar of place names, not a corpus list).
SUFFIXES = "壮族自治区|回族自治区|维吾尔自治区|特别行政区|自治区|自治州|地区|省|市|区|县|州|盟|旗"
_REGION_SUFFIX = re.compile(f"({SUFFIXES})$")


def region_core(name: str) -> str:
    """浙江省 -> 浙江; 广西壮族自治区 -> 广西; 丰台区 -> 丰台. Names of two characters or fewer stay whole."""
    core = _REGION_SUFFIX.sub("", name.strip())
    return core if len(core) >= 2 else name.strip()


@dataclass(frozen=True)
class Place:
    """A place named in a question: how a text may spell it (full name first), and its level (0 province,
    1 prefecture, 2 county)."""

    spellings: tuple[str, ...]
    level: int
    code: str  # the division's 12-digit code: its first 2 (province) or 4 (prefecture) digits hold what is inside

    @property
    def name(self) -> str:
        """The shortest of its spellings, as an answer names it (苏州, 美国)."""
        return min(self.spellings, key=len)

    @property
    def foreign(self) -> bool:
        """Whether this is another country (level 0, holding no division and held by none)."""
        return self.code.startswith(_FOREIGN)

    def holds(self, other: Place) -> bool:
        """Whether ``other`` lies inside this place (湖北省 holds 武汉市, 北京市 holds 密云区)."""
        prefix = self.code[: 2 + 2 * self.level]
        return other.level > self.level and other.code.startswith(prefix)

    def named_in(self, text: str) -> bool:
        return any(s in text for s in self.spellings)


@functools.cache
def _divisions() -> tuple[re.Pattern[str], dict[str, Place]]:
    """A pattern matching any division's name (longest first) and the place each name stands for."""
    places: dict[str, Place] = {}
    for line in _TABLE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, name = line.split("\t")
        level = 0 if code[2:].strip("0") == "" else 1 if code[4:].strip("0") == "" else 2
        short = region_core(name) if level < 2 else name
        spellings = tuple(dict.fromkeys((name, short)))
        for spelled in spellings:
            known = places.get(spelled)
            # A name shared by two divisions (吉林 the province and the city) stands for the wider one.
            if known is None or level < known.level:
                places[spelled] = Place(spellings, level, code)
    for line in _COUNTRIES.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, *names = line.split("\t")
        country = Place(tuple(names), 0, _FOREIGN + code)
        for name in names:
            places.setdefault(name, country)  # a division's name stays the division's (none is shared today)
    names = sorted(places, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, names))), places


def warm_up() -> None:
    """Read the divisions' table now (about 40 ms) rather than on the first question."""
    _divisions()


def place_named(name: str) -> Place | None:
    """The division ``name`` spells (its full name, or a province's or prefecture's without its suffix)."""
    return _divisions()[1].get(name)


@functools.lru_cache(maxsize=1024)
def places_asked(question: str) -> tuple[Place, ...]:
    """``named_places`` of ``question`` at its own word edges (the extractive writer and the fact gate both ask)."""
    return named_places(question, word_edges(question))


def speaks_of(places: Sequence[Place], text: str) -> bool:
    """Whether ``text`` (a passage with its speech's title and region) names one of ``places``."""
    return any(p.named_in(text) for p in places)


# Asking which city, county or district of a region ("在安徽哪个城市办？", "建在宁夏哪个市？"): what answers it is a
# division inside that region, by the official table's codes. Grammar of the question word (哪个 / 哪座 / 哪一个 + the
# level), not a word list; 市场, 区域, 县委… are other words.
_ASKS_WHICH_PLACE = re.compile(r"哪(?:一个|个|座|一)?(?:地级市|城市|市|县|区)(?![场委长级域政])")


def asks_place_inside(question: str) -> Place | None:
    """The one province-level region whose city, county or district ``question`` asks for ("2025年中国网络文明大会在
    安徽哪个城市办？" → 安徽), else None (it asks no such thing, or names no region, or several)."""
    if not _ASKS_WHICH_PLACE.search(question):
        return None
    regions = [p for p in places_asked(question) if p.level == 0 and not p.foreign]
    return regions[0] if len(regions) == 1 else None


def names_place_inside(region: Place, text: str) -> bool:
    """Whether ``text`` names a division inside ``region`` (合肥 or 蜀山区 for 安徽; not 安徽 itself)."""
    return any(region.holds(p) for p in named_places(text, word_edges(text)))


# Asking where something is held, built or located ("在哪里举办", "选在哪里", "建在哪儿", "位于何处", "举办的地点是哪里"):
# a place or an institution answers it. Grammar of the question words with the verbs of holding, building and
# locating; a where-word alone is often read loosely ("来自哪里", "差别在哪", "转向哪里"), and 在哪一年 / 哪方面 ask other
# things.
_WHERE = r"(?:哪里|哪儿|何处|何地|什么地方|哪个(?:城市|国家|省|州|县|市|地区|地方)|哪座城市|哪(?![一些个种方次年天门届位家条项类部]))"
_SITED = r"(?:举办|举行|召开|开幕|开通|办|建|设|选址|落户|坐落|位于|落|选|定|开)"
_ASKS_WHERE = re.compile(
    rf"{_SITED}(?:在|于|到)?{_WHERE}|(?:在|于|到){_WHERE}{_SITED}|(?:地点|地址|场地|位置)(?:是|在|设在)?{_WHERE}"
)
# What a place or an institution is called ends so (grammar of Chinese place and institution names: 吉斯伯恩市, 刑部,
# 戏剧院, 吉隆坡, 体育中心), besides the names jieba tags as proper (地名 ns, 机构 nt, 其他专名 nz). Not its person
# names (nr): it tags 高水平, as in "高水平办好…", as one.
_PLACE_ENDINGS = frozenset(
    "省市县区镇乡村街路道山河江湖海岛港湾馆园场站寺宫城堡坡州国洲洋峡谷原岸口桥厅楼院校部所署局处"
)
_PLACE_ENDING_WORDS = ("中心", "基地", "地区", "首都", "首府", "故乡", "家乡", "大学", "学院")
_PROPER_FLAGS = ("ns", "nt", "nz")


def asks_where(question: str) -> bool:
    """Whether ``question`` asks where something is held, built or located (``_ASKS_WHERE``)."""
    return bool(_ASKS_WHERE.search(question))


def names_a_place(question: str, text: str) -> bool:
    """Whether ``text`` names a place or an institution that ``question`` does not: a word of two characters or more
    that jieba tags as a proper name, or that ends as place and institution names do (``_PLACE_ENDINGS``).
    "办好第十五届全国运动会" names none for "第十五届全国运动会在哪里举办？". Of the reading-comprehension questions
    ``asks_where`` reads (CMRC2018 trial, DRCD dev and test: 57 with a sentence holding the answer), 54 have an answer
    sentence that does; the others answer 建于哪里 with 狭窄的谷地, 在哪边 with 主序带上, and one name jieba cuts apart."""
    return names_unasked(question, text, _PROPER_FLAGS, _PLACE_ENDINGS, _PLACE_ENDING_WORDS)


# A place naming an event it hosts ("卡塔尔世界杯", "北京冬奥会", "上海进博会") names the event: what the question asks
# is the event's, which a page on it states without naming its host ("克罗地亚获得季军"). The kinds of hosted events
# (games, fairs, summits, championships, festivals), written from what they are called, not from any question set.
_HOSTED = re.compile(
    r"\s*(?:\d{4}\s*年?)?\s*(?:世界杯|奥运会|冬奥会|残奥会|冬残奥会|亚运会|亚冬会|大运会|全运会|世博会|博览会|进博会|"
    r"峰会|锦标赛|世锦赛|公开赛|马拉松|电影节|艺术节)"
)


# A port is named by its city, and jieba's dictionary holds the big ones as one word ("青岛港", "天津港"): the city is
# the place asked about, though its name does not end a word.
_PORT = "港"


def named_places(question: str, word_edges: Sequence[int]) -> tuple[Place, ...]:
    """The places ``question`` names, but for one that holds another it names ("江苏苏州" → 苏州); ``word_edges``
    are the offsets where its words start and end (a name must start and end at such edges). Empty for none."""
    pattern, places = _divisions()
    edges = set(word_edges)
    found: dict[tuple[str, ...], Place] = {}
    for m in pattern.finditer(question):
        end = m.end() + 1 if question.startswith(_PORT, m.end()) and m.end() + 1 in edges else m.end()
        if m.start() in edges and end in edges and not _HOSTED.match(question, m.end()):
            place = places[m.group()]
            found.setdefault(place.spellings, place)
    named = list(found.values())
    # "江苏苏州…" asks about 苏州: a place another named place lies inside is only where that one is.
    return tuple(p for p in named if not any(p.holds(q) for q in named))
