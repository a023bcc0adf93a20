"""Real documents in: each converter on small generated files, archives, hostile inputs, JSONL records."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import pytest

from data.convert import Metadata, base
from data.convert.structure import read_dateline
from data.load import load_paths
from data.records import Speech
from tests.docgen import (
    cjk_font,
    encrypt_pdf,
    make_docx,
    make_html,
    make_pdf,
    make_scanned_pdf,
    make_zip,
    make_zip_bomb,
    paragraph_match,
)

SHARED_CORPUS = (
    Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "gov_work_reports_provincial_2025"
)

REPORT = [
    "2025年示范省政府工作报告",
    "——2025年1月14日在示范省第十四届人民代表大会第三次会议上",
    "示范省省长 王小明",
    "各位代表：",
    "现在，我代表省人民政府，向大会报告工作，请予审议。",
    "一、2024年工作回顾",
    "过去一年，全省经济运行稳中有进，地区生产总值增长5.2%，城乡居民收入稳步提高，"
    "各项社会事业全面进步，科技创新能力显著增强。",
    "（一）扩大有效需求",
    "我们实施重大项目一千个，完成投资一万亿元，其中制造业投资增长12%，民间投资止跌回升，"
    "消费品以旧换新带动销售额三百亿元。",
    "二、2025年工作安排",
    "今年发展的主要预期目标是：地区生产总值增长5%左右，城镇新增就业70万人以上。",
]


def long_report(n: int = 14) -> list[str]:
    """REPORT with enough body text for several PDF pages (running heads need >= 3 pages)."""
    body = [
        f"第{i + 1}项工作要扎实推进，围绕高质量发展这个首要任务，统筹推进产业升级、科技创新、"
        f"城乡融合和生态保护，确保各项目标任务落到实处，让人民群众有更多获得感、幸福感和安全感，"
        f"全年安排专项资金{100 + i}亿元，重点支持先进制造业集群和现代服务业发展，加快构建现代化产业体系。"
        for i in range(n)
    ]
    return REPORT + body


needs_font = pytest.mark.skipif(cjk_font() is None, reason="no CJK font (apt-get install fonts-wqy-microhei)")


def _one(report) -> Speech:  # type: ignore[no-untyped-def]
    assert report.skipped == [] and report.errors == [], (report.skipped, report.errors)
    assert len(report.speeches) == 1
    return report.speeches[0]


def _expect_report_metadata(sp: Speech) -> None:
    assert sp.title == "2025年示范省政府工作报告"
    assert (sp.speaker, sp.role, sp.date) == ("王小明", "示范省省长", "2025-01-14")
    assert (sp.region, sp.place) == ("示范省", "示范省第十四届人民代表大会第三次会议")


# ----------------------------------------------------------------------------------------------------
# converters


def test_docx_styles_numbering_tables_and_core_properties(tmp_path):
    data = make_docx(
        [*REPORT, "附：名词解释"],
        title_style="Title",
        headings={"附：名词解释": 1},
        table=[["指标", "目标"], ["地区生产总值", "增长5%左右"]],
        core_title="ignored when the text has a title",
        core_author="办公厅",
    )
    (tmp_path / "report.docx").write_bytes(data)
    sp = _one(load_paths([tmp_path]))
    _expect_report_metadata(sp)
    assert sp.extra["author"] == "办公厅"
    sections = [(p.section, p.text[:7]) for p in sp.paragraphs]
    assert sections[:3] == [
        ("", "各位代表："),
        ("", "现在，我代表省"),
        ("一、2024年工作回顾", "过去一年，全省"),
    ]
    assert ("一、2024年工作回顾 / （一）扩大有效需求", "我们实施重大项") in sections
    # Table rows are kept as " | "-joined paragraphs under the heading above them.
    assert (sp.paragraphs[-1].section, sp.paragraphs[-1].text) == (
        "附：名词解释",
        "地区生产总值 | 增长5%左右",
    )
    assert paragraph_match(sp, REPORT)[0] == len(REPORT)


@needs_font
def test_pdf_drops_running_heads_and_page_numbers_and_rejoins_wrapped_lines(tmp_path):
    paragraphs = long_report()
    (tmp_path / "report.pdf").write_bytes(make_pdf(paragraphs, header="示范省人民代表大会会刊"))
    sp = _one(load_paths([tmp_path]))
    _expect_report_metadata(sp)
    texts = [p.text for p in sp.paragraphs]
    assert not any("会刊" in t or "—" in t for t in texts)
    matched, exact, total = paragraph_match(sp, paragraphs)
    assert matched == total
    assert exact == total - 6  # title, dateline, speaker line and three headings are not body paragraphs


def test_html_keeps_the_article_and_drops_site_boilerplate(tmp_path):
    page = make_html(REPORT[0], REPORT, site="示范省人民政府", author="示范省政府办公厅", date="2025-01-20")
    (tmp_path / "report.html").write_bytes(page)
    sp = _one(load_paths([tmp_path]))
    _expect_report_metadata(sp)
    text = "\n".join(p.text for p in sp.paragraphs)
    for boilerplate in ("首页", "政务公开", "网站标识码", "相关链接", "分享到", "发布时间"):
        assert boilerplate not in text
    assert sp.extra["author"] == "示范省政府办公厅"
    assert paragraph_match(sp, REPORT)[0] == len(REPORT)


def test_html_meta_gives_title_and_date_when_the_text_states_none(tmp_path):
    page = make_html(
        "关于优化营商环境的讲话", ["同志们：", "今天我们召开全市优化营商环境大会。"], date="2024-06-03"
    )
    (tmp_path / "talk.htm").write_bytes(
        page.decode().replace('charset="utf-8"', 'charset="gbk"').encode("gbk")
    )
    sp = _one(load_paths([tmp_path]))
    assert (sp.title, sp.date) == ("关于优化营商环境的讲话", "2024-06-03")
    # A short article is still only the article (no fallback to the whole page), whatever the encoding.
    assert [p.text for p in sp.paragraphs] == ["同志们：", "今天我们召开全市优化营商环境大会。"]


def test_zip_with_gbk_names_is_read_entry_by_entry(tmp_path):
    archive = make_zip(
        {
            "报告/2025年示范省政府工作报告.docx": make_docx(REPORT),
            "讲话.txt": "## 在全区会议上的讲话\n\n区长 赵六\n\n全年事故下降。".encode("gbk"),
        }
    )
    info = zipfile.ZipFile(io.BytesIO(archive)).infolist()
    assert not info[0].flag_bits & 0x800  # stored as Chinese Windows does: GBK, no UTF-8 flag
    (tmp_path / "reports.zip").write_bytes(archive)
    report = load_paths([tmp_path / "reports.zip"])
    assert report.skipped == []
    assert sorted(sp.source.split("!")[1] for sp in report.speeches) == [
        "报告/2025年示范省政府工作报告.docx",
        "讲话.txt",
    ]
    assert {sp.speaker for sp in report.speeches} == {"王小明", "赵六"}


def test_dateline_variants_give_date_place_role_and_speaker():
    cases = {
        "——2025年1月14日在浙江省第十四届人民代表大会第三次会议上": ("2025-01-14", "浙江省", "", ""),
        "2025年1月14日在北京市第十六届人民代表大会第三次会议上北京市市长 殷勇同志作政府工作报告。": (
            "2025-01-14",
            "北京市",
            "北京市市长",
            "殷勇",
        ),
        "----2025年1月15日龚正市长在上海市第十六届人民代表大会第三次会议的政府工作报告": (
            "2025-01-15",
            "上海市",
            "市长",
            "龚正",
        ),
        "——2025年1月14日海南省省长 刘小明在海南省第七届人民代表大会第四次会议上的讲话": (
            "2025-01-14",
            "海南省",
            "海南省省长",
            "刘小明",
        ),
    }
    for line, (date, region, role, speaker) in cases.items():
        meta = read_dateline(line)
        assert meta is not None
        assert (meta.date, meta.region, meta.role, meta.speaker) == (date, region, role, speaker), line


# ----------------------------------------------------------------------------------------------------
# hostile inputs: each reported with its reason, nothing else affected


def _good(folder: Path) -> None:
    (folder / "good.txt").write_text("## 标题\n\n张三\n\n这是正文。", encoding="utf-8")


def _reasons(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        Path(where).name if "!" not in where else where.split("!")[1]: why for where, why in report.skipped
    }


def test_malformed_docx_is_reported_and_the_rest_is_read(tmp_path):
    _good(tmp_path)
    (tmp_path / "broken.docx").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "notword.docx").write_bytes(make_zip({"hello.txt": b"hi"}, gbk_names=False))
    report = load_paths([tmp_path])
    reasons = _reasons(report)
    assert "not a readable .docx" in reasons["broken.docx"]
    assert "not a Word .docx" in reasons["notword.docx"]
    assert [s.title for s in report.speeches] == ["标题"]


@needs_font
def test_encrypted_and_scanned_pdfs_are_refused_with_the_reason(tmp_path):
    _good(tmp_path)
    (tmp_path / "locked.pdf").write_bytes(encrypt_pdf(make_pdf(REPORT)))
    (tmp_path / "scan.pdf").write_bytes(make_scanned_pdf())
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    report = load_paths([tmp_path])
    reasons = _reasons(report)
    assert "encrypted PDF" in reasons["locked.pdf"]
    assert "no text layer (scanned?)" in reasons["scan.pdf"]
    assert "corrupt.pdf" in reasons
    assert [s.title for s in report.speeches] == ["标题"]


def test_zip_entries_with_absolute_paths_or_dotdot_are_refused(tmp_path):
    good = "## 标题\n\n张三\n\n这是正文。".encode()
    archive = make_zip({"../x.txt": good, "/etc/evil.txt": good, "ok/good.txt": good}, gbk_names=False)
    (tmp_path / "a.zip").write_bytes(archive)
    report = load_paths([tmp_path / "a.zip"])
    reasons = _reasons(report)
    assert "'..'" in reasons["../x.txt"]
    assert "absolute path" in reasons["/etc/evil.txt"]
    assert [s.source.split("!")[1] for s in report.speeches] == ["ok/good.txt"]
    assert not (tmp_path.parent / "x.txt").exists()


def test_zip_bomb_is_refused_without_unpacking_it(tmp_path):
    _good(tmp_path)
    (tmp_path / "bomb.zip").write_bytes(make_zip_bomb(200 * 1024 * 1024))
    report = load_paths([tmp_path])
    reason = _reasons(report)["zeros.txt"]
    assert "zip bomb" in reason and f"{base.MAX_COMPRESSION_RATIO}:1" in reason
    assert [s.title for s in report.speeches] == ["标题"]


def test_archive_over_the_total_size_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "MAX_ARCHIVE_BYTES", 1000)
    (tmp_path / "big.zip").write_bytes(make_zip({"a.txt": "正文。".encode() * 400}, gbk_names=False))
    report = load_paths([tmp_path])
    assert "over the limit of 1000" in dict(report.skipped)[str(tmp_path / "big.zip")]


def test_nested_zip_is_not_opened(tmp_path):
    inner = make_zip({"a.txt": "## 标题\n\n正文。".encode()}, gbk_names=False)
    (tmp_path / "outer.zip").write_bytes(make_zip({"inner.zip": inner}, gbk_names=False))
    report = load_paths([tmp_path])
    assert "zip inside a zip" in _reasons(report)["inner.zip"]
    assert report.speeches == []


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "MAX_FILE_BYTES", 100)
    _good(tmp_path)
    (tmp_path / "big.txt").write_text("## 长文\n\n" + "正文。" * 100, encoding="utf-8")
    report = load_paths([tmp_path])
    assert "over the size limit (100 bytes)" in _reasons(report)["big.txt"]
    assert [s.title for s in report.speeches] == ["标题"]


def test_symlinks_are_refused_unless_followed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    _good(root)
    (outside / "secret.txt").write_text("## 机密\n\n不该读到。", encoding="utf-8")
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    report = load_paths([root])
    reasons = _reasons(report)
    assert "symlink" in reasons["link.txt"] and "symlink" in reasons["linkdir"]
    assert [s.title for s in report.speeches] == ["标题"]
    (outside / "loop").symlink_to(root, target_is_directory=True)  # followed links may form a cycle
    followed = load_paths([root], follow_symlinks=True)
    assert sorted(s.title for s in followed.speeches) == ["机密", "机密", "标题"]


# ----------------------------------------------------------------------------------------------------
# JSONL records and metadata


def test_jsonl_null_source_means_absent_and_does_not_drop_the_speech(tmp_path):
    # Before data/convert, "source": null failed the string check and the speech was silently dropped.
    row = {
        "title": "讲话",
        "speaker": "张三",
        "source": None,
        "date": None,
        "text": "一、情况\n今年进展顺利。",
    }
    (tmp_path / "s.jsonl").write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
    report = load_paths([tmp_path / "s.jsonl"])
    sp = _one(report)
    assert (sp.title, sp.speaker, sp.date) == ("讲话", "张三", "")
    assert sp.source == f"{tmp_path / 's.jsonl'}:1"


def test_jsonl_extra_fields_are_kept_as_strings(tmp_path):
    row = {
        "title": "2025年示范省政府工作报告",
        "region": "示范省",
        "year": 2025,
        "doc_type": "政府工作报告",
        "url": "https://example.gov.cn/a.html",
        "official": True,
        "paragraphs": REPORT,
    }
    (tmp_path / "r.jsonl").write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
    sp = _one(load_paths([tmp_path]))
    assert sp.region == "示范省"
    assert {k: sp.extra[k] for k in ("year", "doc_type", "url", "official")} == {
        "year": "2025",
        "doc_type": "政府工作报告",
        "url": "https://example.gov.cn/a.html",
        "official": "true",
    }
    # "paragraphs" are read like a document: the front matter gives speaker and date.
    assert (sp.speaker, sp.date) == ("王小明", "2025-01-14")


def test_jsonl_wrong_types_fail_the_ingest_unless_skip_bad(tmp_path):
    from cli.main import main

    rows = [
        {"title": "好的", "text": "正文。"},
        {"title": 5, "text": "正文。"},
        {"title": "无正文", "text": None, "speaker": "李四"},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    report = load_paths([path])
    assert [(w.rsplit(":", 1)[1], "title (int)" in r or "text" in r) for w, r in report.errors] == [
        ("2", True),
        ("3", True),
    ]
    # The command fails before loading any model or touching the index.
    assert main(["ingest", str(path), "--index", str(tmp_path / "index"), "--quiet"]) != 0
    assert not (tmp_path / "index").exists()
    assert load_paths([path], skip_bad=True).errors == []


def test_overrides_replace_what_the_document_says(tmp_path):
    (tmp_path / "report.docx").write_bytes(make_docx(REPORT))
    overrides = Metadata(speaker="李四", role="代省长", date="2025-01-15", region="样板省")
    sp = _one(load_paths([tmp_path], overrides=overrides))
    assert (sp.title, sp.speaker, sp.role, sp.date, sp.region) == (
        "2025年示范省政府工作报告",
        "李四",
        "代省长",
        "2025-01-15",
        "样板省",
    )


def test_speech_with_new_fields_round_trips_through_asdict_and_json():
    from data.parse import make_speech

    sp = make_speech(title="T", speaker="S", paragraphs=[("", "正文。")], region="R", extra={"year": "2025"})
    plain = json.loads(json.dumps(dataclasses.asdict(sp), ensure_ascii=False))
    assert plain["region"] == "R" and plain["extra"] == {"year": "2025"} and plain["place"] == ""
    fields = {k: v for k, v in plain.items() if k != "paragraphs"}
    assert Speech(**fields, paragraphs=sp.paragraphs) == sp
    hash(sp)  # still hashable: extra is left out of the hash
    old_style = Speech("id", "t", "s", "r", "d", "src", ())  # existing positional calls keep working
    assert old_style.extra == {} and old_style.region == ""


# ----------------------------------------------------------------------------------------------------
# acceptance: the 31 provincial work reports


@pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="../shared/benchmarks corpus not present")
def test_provincial_docx_zip_matches_the_jsonl_paragraphs(tmp_path):
    rows = [json.loads(line) for line in (SHARED_CORPUS / "provincial_gwr_2025.jsonl").open(encoding="utf-8")]
    archive = SHARED_CORPUS / "provincial_gwr_2025_docx.zip"
    report = load_paths([archive])
    assert report.skipped == [] and len(report.speeches) == 31
    by_title = {sp.title: sp for sp in report.speeches}
    matched = total = 0
    for row in rows:
        m, _exact, t = paragraph_match(by_title[row["title"]], row["paragraphs"])
        matched, total = matched + m, total + t
    assert matched / total >= 0.98
    assert sum(1 for sp in report.speeches if sp.speaker and sp.role) >= 28
    # The unpacked folder reads the same (names as Windows would have unpacked them).
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename.encode("cp437").decode("gbk")
            (tmp_path / name).write_bytes(zf.read(info))
    unpacked = load_paths([tmp_path])
    assert sorted((s.title, s.speaker, len(s.paragraphs)) for s in unpacked.speeches) == sorted(
        (s.title, s.speaker, len(s.paragraphs)) for s in report.speeches
    )


def test_ingest_progress_prints_plain_lines_when_not_a_terminal():
    import io as _io

    from cli.main import _Progress

    now = [0.0]
    out = _io.StringIO()
    progress = _Progress("encoding", stream=out, every=5.0, clock=lambda: now[0])
    for done, t in ((0, 0.0), (10, 2.0), (50, 6.0), (90, 9.0), (100, 10.0)):
        now[0] = t
        progress(done, 100)
    lines = out.getvalue().splitlines()
    assert lines == [
        "encoding: 50/100 paragraphs, 8.3/s, ETA 0:06, elapsed 0:06",
        "encoding: 100/100 paragraphs, 10.0/s, ETA 0:00, elapsed 0:10",
    ]
    quiet = _io.StringIO()
    _Progress("encoding", quiet=True, stream=quiet)(5, 10)
    assert quiet.getvalue() == ""
