"""The learned answerability model on corpora the test builds itself (real encoder, real index)."""

from __future__ import annotations

import pytest

from data.parse import make_speech
from qa.index import build_index
from qa.service import AnswerService

pytestmark = pytest.mark.slow

_COMMON = [
    ("一、总体安排", "新城坚持规划引领，推动产业、交通和生态协同发展，建设宜居宜业的现代化城区。"),
    ("二、交通建设", "新城将建设三条轨道交通线路，完善城市道路网络，实现与中心城区半小时通达。"),
    ("三、生态环境", "新城将新建两座城市公园，提升绿化覆盖率，打造蓝绿交织的生态空间。"),
    ("四、产业发展", "新城重点发展数字经济和高端制造业，引进一批龙头企业，培育创新型中小企业。"),
]
_AREA = ("一、总体安排", "新城规划总面积为58平方公里，其中起步区面积为12平方公里。")


def _service(tmp_path, real_encoder, with_area: bool) -> AnswerService:
    paragraphs = list(_COMMON)
    if with_area:
        paragraphs.insert(1, _AREA)
    speech = make_speech(
        title="新城发展规划情况介绍", speaker="张明", role="新城管委会主任", paragraphs=paragraphs
    )
    index_dir = tmp_path / ("with" if with_area else "without")
    build_index([speech], real_encoder, index_dir)
    return AnswerService.open(index_dir, real_encoder)


def test_question_whose_unit_is_absent_is_refused_and_answered_when_present(tmp_path, real_encoder):
    question = "新城规划总面积是多少平方公里？"
    present = _service(tmp_path, real_encoder, with_area=True).ask(question)
    assert present.answerable, present.answer
    assert "58平方公里" in present.answer
    absent = _service(tmp_path, real_encoder, with_area=False).ask(question)
    assert not absent.answerable, absent.answer
    assert absent.citations == ()
