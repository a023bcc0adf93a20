"""Which speeches a question names: speaker, title, quoted title, region; in question order."""

from __future__ import annotations

import dataclasses

from data.records import Speech
from qa.mentions import mentioned_speeches


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
