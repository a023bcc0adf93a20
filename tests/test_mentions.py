"""Which speeches a question names: speaker, title, quoted title, region; in question order."""

from __future__ import annotations

import dataclasses

from data.records import Speech
from qa.mentions import compares, firmly_named, mentioned_speeches


def _speech(sid: str, title: str, speaker: str = "", region: str = "") -> Speech:
    return Speech(sid, title, speaker, "省长", "2023-01-15", f"test:{sid}", (), region=region)


def test_mentions_by_speaker_title_and_region_in_question_order():
    speeches = {
        "zj": _speech("zj", "2023年浙江省政府工作报告", "李国龙", "浙江省"),
        "gx": _speech("gx", "2023年广西壮族自治区政府工作报告", "", "广西壮族自治区"),
        "zj2": _speech("zj2", "浙江省另一份报告", "王明", "浙江省"),
        "t": _speech("t", "关于金融新区建设的讲话"),
    }
    assert mentioned_speeches("广西和浙江的经济", speeches) == ("gx", "zj", "zj2")
    assert mentioned_speeches("王明和李国龙说了什么", speeches) == ("zj2", "zj")
    assert mentioned_speeches("《关于金融新区建设的讲话》讲了什么", speeches) == ("t",)
    assert mentioned_speeches("地铁通车", speeches) == ()


def test_mentions_follow_a_changed_speech_mapping():
    """Names are indexed once per mapping; a new mapping (a new index version) is indexed again."""
    first = {"a": _speech("a", "某报告", "李国龙")}
    assert mentioned_speeches("李国龙", first) == ("a",)
    second = {"b": dataclasses.replace(first["a"], speech_id="b", speaker="王明")}
    assert mentioned_speeches("李国龙", second) == ()
    assert mentioned_speeches("王明", second) == ("b",)


def test_a_year_naming_a_report_picks_the_report_of_that_year():
    """ "2023年政府工作报告是谁作的" is about the report given in 2023, not the best-matching passage's report;
    a year that is a figure's period ("2024年国内生产总值增长多少") names no report."""
    national = {
        f"n{y}": dataclasses.replace(_speech(f"n{y}", f"{y}年国务院政府工作报告"), date=f"{y}-03-05")
        for y in (2023, 2024, 2025)
    }
    assert mentioned_speeches("2023年政府工作报告是谁作的？", national) == ("n2023",)
    assert mentioned_speeches("2024年报告说五年来累计减税降费多少？", national) == ("n2024",)
    assert mentioned_speeches("2024年国内生产总值增长多少？", national) == ()
    regional = {
        "zj23": dataclasses.replace(
            _speech("zj23", "浙江省政府工作报告", region="浙江省"), date="2023-01-15"
        ),
        "zj24": dataclasses.replace(
            _speech("zj24", "浙江省政府工作报告", region="浙江省"), date="2024-01-15"
        ),
        "js24": dataclasses.replace(
            _speech("js24", "江苏省政府工作报告", region="江苏省"), date="2024-01-20"
        ),
    }
    # Named by region, narrowed by the report's year; a year shared by several reports names none alone.
    assert mentioned_speeches("浙江2024年政府工作报告提出了什么？", regional) == ("zj24",)
    assert mentioned_speeches("2024年政府工作报告提出了什么？", regional) == ()


def test_speeches_of_one_region_or_speaker_are_one_side_of_a_comparison():
    """ "上海和北京…分别" compares two sides; a question naming 全国 or 李强 over several of their reports does
    not: each answer side is named by its label, and one label twice names nothing."""
    from qa.mentions import compares, speech_label

    speeches = {
        "n24": _speech("n24", "2024年国务院政府工作报告", "李强", "全国"),
        "n25": _speech("n25", "2025年国务院政府工作报告", "李强", "全国"),
        "sh": _speech("sh", "上海市政府工作报告", "龚正", "上海市"),
        "bj": _speech("bj", "北京市政府工作报告", "殷勇", "北京市"),
    }
    assert mentioned_speeches("全国粮食产量是多少？", speeches) == ("n24", "n25")
    assert not compares(("n24", "n25"), speeches)
    assert compares(mentioned_speeches("上海和北京的增长目标分别是多少？", speeches), speeches)
    assert not compares(("sh",), speeches)
    # Regions read off titles, one with a wrong suffix ("省际" is "between provinces"): still one place.
    notices = {
        "a": _speech("a", "重庆省际包车全面恢复正常运转"),
        "b": _speech("b", "重庆市税务局发布网上办税清单"),
        "c": _speech("c", "四川省人民政府关于支持企业复工的通知"),
    }
    assert mentioned_speeches("重庆市税务网上申报率为多少？", notices) == ("a", "b")
    assert not compares(("a", "b"), notices)
    assert [speech_label(notices[s]) for s in "ab"] == [
        "重庆",
        "重庆",
    ]  # a region guessed from a title: its core
    assert (
        speech_label(_speech("zj", "浙江省政府工作报告", region="浙江省")) == "浙江省"
    )  # from metadata: whole
    assert compares(("a", "c"), notices)
    # A place and a place inside it, written as an address, are one side; the same two named apart are two.
    places = {
        "bj": _speech("bj", "北京市财政局关于疫情防控经费保障的通知"),
        "my": _speech("my", "密云区社保中心恢复对外办公"),
    }
    address = "北京市密云区社保中心什么时候开始对外办公？"
    assert mentioned_speeches(address, places) == ("bj", "my")
    assert not compares(("bj", "my"), places, address)
    assert compares(("bj", "my"), places, "北京和密云的社保中心分别什么时候开始对外办公？")
    # Provinces listed side by side are not an address, with or without the 、 between them: none lies inside another.
    provinces = {r: _speech(r, f"2025年{r}省政府工作报告", region=f"{r}省") for r in ("安徽", "江西", "湖南")}
    for listed in ("安徽、江西、湖南三省今年的增长目标是多少？", "安徽江西湖南三省今年的增长目标是多少？"):
        assert compares(mentioned_speeches(listed, provinces), provinces, listed), listed


def test_a_report_year_no_speech_was_given_in_is_unknown_unless_a_speech_has_no_year():
    from qa.mentions import unknown_report_years

    dated = {
        "a": dataclasses.replace(_speech("a", "区委理论学习中心组讲话"), date="2022-07-09"),
        "b": dataclasses.replace(_speech("b", "2022年政府工作报告"), date=""),
    }
    assert unknown_report_years("2023年政府工作报告是谁作的？", dated) == [2023]
    assert unknown_report_years("2022年报告提出了什么？", dated) == []
    assert unknown_report_years("2023年国内生产总值增长多少？", dated) == []  # a period, not a report
    undated = {**dated, "c": dataclasses.replace(_speech("c", "关于金融新区建设的讲话"), date="")}
    assert unknown_report_years("2023年政府工作报告是谁作的？", undated) == []  # "c" could be it


def test_speeches_sharing_a_label_are_told_apart_by_year_then_title():
    """Quotes from the 2023 and 2024 national reports were both labelled "全国：", which says nothing."""
    from qa.mentions import speech_labels

    n23 = dataclasses.replace(_speech("n23", "2023年政府工作报告", "", "全国"), date="2023-03-05")
    n24 = dataclasses.replace(_speech("n24", "2024年政府工作报告", "", "全国"), date="2024-03-05")
    zj = _speech("zj", "2023年浙江省政府工作报告", "王浩", "浙江省")
    assert speech_labels([n23, zj, n24, n23]) == [
        "全国（2023年）",
        "浙江省",
        "全国（2024年）",
        "全国（2023年）",
    ]
    assert speech_labels([zj, zj]) == ["浙江省", "浙江省"]  # one speech: nothing to tell apart
    notice = dataclasses.replace(n23, speech_id="n23b", title="关于做好春耕工作的通知")
    assert speech_labels([n23, notice]) == [
        "2023年政府工作报告",
        "关于做好春耕工作的通知",
    ]  # same year: titles


def test_a_speech_is_firmly_named_by_its_speaker_its_metadata_region_or_its_report_year():
    """Only these confine an answer to the named speeches (AnswerService); a region read off a title or a
    piece of a title only ranks them first."""
    speeches = {
        "jl": _speech("jl", "2025年吉林省政府工作报告", "胡玉亭", "吉林省"),
        "gs": _speech("gs", "2025年甘肃省政府工作报告", "", "甘肃省"),
        "cq": _speech("cq", "重庆市税务局关于延长申报期限的通知"),
    }
    firm = lambda q: firmly_named(q, mentioned_speeches(q, speeches), speeches)  # noqa: E731
    assert firm("吉林2024年地区生产总值增长了多少？") == ("jl",)
    assert firm("胡玉亭的报告提出了哪些目标？") == ("jl",)
    assert firm("甘肃省今年粮食产量目标是多少？") == ("gs",)
    assert mentioned_speeches("重庆的申报期限延长到哪天？", speeches) == ("cq",)
    assert firm("重庆的申报期限延长到哪天？") == ()
    national = {
        "n23": Speech("n23", "政府工作报告", "李克强", "国务院总理", "2023-03-05", "t", ()),
        "n24": Speech("n24", "政府工作报告", "李强", "国务院总理", "2024-03-05", "t", ()),
    }
    q = "2023年报告说过去五年经济增长多少？"
    assert firmly_named(q, mentioned_speeches(q, national), national) == ("n23",)


def test_a_question_naming_a_party_congress_names_the_report_given_at_it():
    """ "十九大报告…", "党的二十大提出…", "第十三次党代会报告…" name the report whose opening lines (its place) or title
    name that congress, firmly; "一大批", "十大工程" and a congress no speech was given at name nothing."""
    speeches = {
        "c18": dataclasses.replace(
            _speech("c18", "坚定不移沿着道路前进"), place="中国共产党第十八次全国代表大会", date="2012-11-08"
        ),
        "c19": dataclasses.replace(
            _speech("c19", "决胜全面建成小康社会"), place="中国共产党第十九次全国代表大会", date="2017-10-18"
        ),
        "bj": dataclasses.replace(
            _speech("bj", "在中国共产党北京市第十三次代表大会上的报告", "蔡奇"), date="2022-06-27"
        ),
        "gov": _speech("gov", "2023年政府工作报告", "李强", "全国"),
        # An uploaded document names its congress in its front matter's subtitle (data.convert.structure).
        "c20": dataclasses.replace(
            _speech("c20", "高举伟大旗帜"),
            date="2022-10-16",
            extra={"subtitle": "——在中国共产党第二十次全国代表大会上的报告"},
        ),
    }
    assert mentioned_speeches("十九大报告说贫困发生率降到了多少？", speeches) == ("c19",)
    assert mentioned_speeches("按党的十八大的说法，全面小康何时建成？", speeches) == ("c18",)
    # The congress whose report the question cites, not one it names as a time.
    assert mentioned_speeches("十九大报告说，十八大以来经济增长了多少？", speeches) == ("c19",)
    assert mentioned_speeches("十八大和十九大都提出了什么？", speeches) == ("c18", "c19")
    # Congresses joined by 和 / 、 share the report cited after the last: both reports are asked about, and one
    # speaker's two congress reports are two sides of a comparison.
    both = mentioned_speeches("十九大和二十大报告分别提出了什么？", speeches)
    assert both == ("c19", "c20") and compares(both, speeches, "十九大和二十大报告分别提出了什么？")
    assert mentioned_speeches("十八大、十九大报告都提到了什么？", speeches) == ("c18", "c19")
    assert mentioned_speeches("市第十三次党代会报告提出了什么？", speeches) == ("bj",)
    assert firmly_named("十九大报告说贫困发生率降到了多少？", ("c19",), speeches) == ("c19",)
    assert mentioned_speeches("一大批企业落户，十大工程开工", speeches) == ()
    assert mentioned_speeches("二十大报告说了什么？", speeches) == ("c20",)
    assert mentioned_speeches("十七大报告说了什么？", speeches) == ()
    # A year naming a report picks among the speeches named otherwise, as for regions.
    assert mentioned_speeches("2023年报告说，十九大以来经济增长多少？", speeches) == ("gov",)


def test_a_congress_report_the_index_does_not_hold_is_unknown_only_where_it_holds_congress_reports():
    from qa.mentions import unknown_congress_reports

    congress = {
        "c19": dataclasses.replace(
            _speech("c19", "决胜全面建成小康社会"), place="中国共产党第十九次全国代表大会"
        ),
    }
    assert unknown_congress_reports("十七大报告说贫困发生率是多少？", congress) == ["十七"]
    assert unknown_congress_reports("十九大报告说贫困发生率是多少？", congress) == []
    assert unknown_congress_reports("十七大以来贫困发生率降了多少？", congress) == []  # a time, not a report
    # A corpus of government work reports may quote a congress report: its passages decide.
    assert (
        unknown_congress_reports("十七大报告说了什么？", {"gov": _speech("gov", "2023年政府工作报告")}) == []
    )


def test_places_are_read_by_official_division_names_where_they_are_words_and_the_most_local_is_asked():
    from qa.places import places_asked

    def asked(question: str) -> list[str]:
        return [p.spellings[0] for p in places_asked(question)]

    assert asked("苏州今年地区生产总值增长目标是多少？") == ["苏州市"]  # a prefecture without its suffix
    assert asked("江苏苏州今年GDP目标？") == ["苏州市"]  # the most local of the places named
    assert asked("北京市密云区社保中心什么时候开始对外办公？") == ["密云区"]
    assert asked("内蒙古今年粮食产量目标是多少？") == ["内蒙古自治区"]
    assert sorted(asked("宁夏和青海今年的GDP增长目标分别是多少？")) == ["宁夏回族自治区", "青海省"]
    # Not places: a name inside another word, a county's short form (a common word), no place at all.
    assert asked("如何实现长治久安？") == []
    assert asked("维护世界和平有哪些措施？") == []
    assert asked("今年地区生产总值增长目标是多少？") == []
    # Other countries, by ISO 3166-1's Chinese names; China itself is no foreign place.
    assert asked("2022年12月美国CPI上涨了多少？") == ["美国"]
    assert sorted(asked("日本和韩国的出口增长多少？")) == ["大韩民国", "日本"]
    assert asked("中国今年GDP增长目标是多少？") == []
    assert asked("内蒙古和蒙古的边境口岸有哪些？") == ["内蒙古自治区", "蒙古"]
    # A place naming an event it hosts names the event, not what is asked about.
    assert asked("卡塔尔世界杯季军是哪支球队？") == []
    assert asked("北京2022年冬奥会吉祥物是什么？") == []
    assert asked("辽宁打算怎么办好全运会？") == ["辽宁省"]
