"""Parsing: the sample corpus's traps, other formats, encodings, bad files, stable ids."""

from __future__ import annotations

import json

from data.load import builtin_corpus_dir, load_paths
from data.parse import parse_speech_text, split_sentences


def test_builtin_corpus_has_three_speeches_with_speakers(corpus_speeches):
    got = [(s.title, s.speaker, s.role) for s in corpus_speeches]
    assert got == [
        ("打造产业聚焦、北联南拓的金融新区", "李国龙", "丽泽金融商务区工委书记、管委会主任"),
        ("建设更具创新活力的中关村丰台园", "孙睿", "中关村科技园丰台园工委书记、管委会副主任"),
        ("走好网上群众路线 维护网络意识形态安全", "孙永文", "区委网信办主任"),
    ]


def test_credit_line_column_heading_and_speaker_lines_are_not_content(corpus_speeches):
    texts = [p.text for s in corpus_speeches for p in s.paragraphs]
    assert not any("责编" in t or t == "首都发展大讲堂" for t in texts)
    assert not any(t.endswith("李国龙") or t.endswith("孙睿") or t.endswith("孙永文") for t in texts)
    assert not any(t.startswith(("一、", "(一)", "（一）")) for t in texts)


def test_page_break_split_is_joined_without_space(corpus_speeches):
    texts = [p.text for s in corpus_speeches for p in s.paragraphs]
    assert sum("确保地铁16号线年底前实现通车运行。" in t for t in texts) == 1
    assert sum("切实增强群众获得感、幸福感、满足感" in t for t in texts) == 1
    assert not any(t.endswith("实现通") for t in texts)


def test_every_paragraph_ends_a_sentence(corpus_speeches):
    for s in corpus_speeches:
        for p in s.paragraphs:
            assert p.text[-1] in "。！？：”", p.text[-20:]


def test_sections_form_a_path(corpus_speeches):
    lili = corpus_speeches[0]
    sections = [p.section for p in lili.paragraphs]
    assert sections[0] == ""
    assert "二、工作思路 / (一) 坚持规划引领" in sections
    assert corpus_speeches[2].paragraphs[-1].section == "四、清理不良信息聚民心"


def test_stray_english_word_is_kept_verbatim_but_not_indexed(corpus_speeches):
    from qa.lexical import tokenize

    texts = [p.text for s in corpus_speeches for p in s.paragraphs]
    noisy = [t for t in texts if "提升业务水平 and 分级管控能力" in t]
    assert len(noisy) == 1  # quotes must be findable in the source as written
    assert "and" not in tokenize(noisy[0])


def test_sentences_are_exact_spans_of_their_paragraph(corpus_speeches):
    for s in corpus_speeches:
        for p in s.paragraphs:
            assert p.sentences
            for sent in p.sentences:
                assert p.text[sent.start : sent.end] == sent.text
            assert "".join(x.text for x in p.sentences).replace(" ", "") == p.text.replace(" ", "")


def test_split_sentences_keeps_closing_quote_with_its_sentence():
    text = "习近平总书记指出：“知屋漏者在宇下，知政失者在草野。”要强化互联网思维。"
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "习近平总书记指出：“知屋漏者在宇下，知政失者在草野。”",
        "要强化互联网思维。",
    ]


def test_ids_are_stable_across_rebuilds_and_file_moves(tmp_path):
    src = (builtin_corpus_dir() / "000_637ffde25741a596.txt").read_text(encoding="utf-8")
    a = parse_speech_text(src, source="a.txt")
    b = parse_speech_text(src, source="elsewhere/b.txt")
    assert [p.paragraph_id for s in a for p in s.paragraphs] == [
        p.paragraph_id for s in b for p in s.paragraphs
    ]
    ids = [p.paragraph_id for s in a for p in s.paragraphs]
    assert len(ids) == len(set(ids))


def test_editing_one_paragraph_changes_only_its_id():
    src = (builtin_corpus_dir() / "000_637ffde25741a596.txt").read_text(encoding="utf-8")
    before = [p.paragraph_id for s in parse_speech_text(src) for p in s.paragraphs]
    after = [
        p.paragraph_id
        for s in parse_speech_text(src.replace("理论是行动的先导", "理论是行动的指南"))
        for p in s.paragraphs
    ]
    assert sum(x != y for x, y in zip(before, after, strict=True)) == 1


def test_gb18030_utf8_bom_and_plain_utf8_read_the_same(tmp_path):
    src = (builtin_corpus_dir() / "000_637ffde25741a596.txt").read_text(encoding="utf-8")
    (tmp_path / "gbk.txt").write_bytes(src.encode("gb18030"))
    (tmp_path / "bom.md").write_bytes(b"\xef\xbb\xbf" + src.encode("utf-8"))
    (tmp_path / "plain.txt").write_text(src, encoding="utf-8")
    report = load_paths([tmp_path])
    assert report.skipped == []
    assert len(report.files_read) == 3
    texts = [[p.text for p in s.paragraphs] for s in report.speeches]
    assert texts[0] == texts[3] == texts[6]


def test_bad_files_are_reported_and_skipped_without_stopping(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_bytes(b"  \n\n ")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "garbage.txt").write_bytes(b"\x81\x30\xff\xfe\x00abc" * 3 + b"\xff")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n")
    (tmp_path / "good.txt").write_text("## 标题\n\n张三\n\n这是正文。", encoding="utf-8")
    report = load_paths([tmp_path])
    reasons = dict(report.skipped)
    assert [s.title for s in report.speeches] == ["标题"]
    assert report.speeches[0].speaker == "张三"
    assert "empty" in reasons[str(tmp_path / "empty.txt")]
    assert (
        "whitespace" in reasons[str(tmp_path / "blank.txt")]
        or "empty" in reasons[str(tmp_path / "blank.txt")]
    )
    assert "binary" in reasons[str(tmp_path / "binary.txt")]
    assert str(tmp_path / "garbage.txt") in reasons
    assert "unsupported" in reasons[str(tmp_path / "image.png")]


def test_jsonl_speeches_with_a_bad_line(tmp_path):
    rows = [
        {
            "title": "关于教育工作的讲话",
            "speaker": "王五",
            "role": "区长",
            "date": "2023-03-01",
            "text": "一、总体情况\n今年学校建设进展顺利。\n二、下一步\n新建三所小学。",
        },
        "not json",
        {"title": "无正文"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) if isinstance(r, dict) else r for r in rows]
    (tmp_path / "s.jsonl").write_text("\n".join(lines), encoding="utf-8")
    report = load_paths([tmp_path / "s.jsonl"])
    assert len(report.speeches) == 1
    sp = report.speeches[0]
    assert (sp.title, sp.speaker, sp.role, sp.date) == ("关于教育工作的讲话", "王五", "区长", "2023-03-01")
    assert [p.section for p in sp.paragraphs] == ["一、总体情况", "二、下一步"]
    # Bad records fail the ingest by default, naming file and line ...
    assert [where.rsplit(":", 1)[1] for where, _ in report.errors] == ["2", "3"]
    assert report.skipped == []
    # ... and are reported and skipped with skip_bad.
    report = load_paths([tmp_path / "s.jsonl"], skip_bad=True)
    assert len(report.speeches) == 1 and report.errors == []
    assert [where.rsplit(":", 1)[1] for where, _ in report.skipped] == ["2", "3"]


def test_plain_text_speech_without_markdown_uses_first_line_as_title(tmp_path):
    (tmp_path / "talk.txt").write_text(
        "在全区安全生产工作会议上的讲话\n区长 赵六\n（2024年1月5日）\n一、形势\n全年事故下降。\n二、任务\n要压实责任。",
        encoding="utf-8",
    )
    sp = load_paths([tmp_path]).speeches[0]
    assert (sp.title, sp.speaker, sp.role, sp.date) == (
        "在全区安全生产工作会议上的讲话",
        "赵六",
        "区长",
        "2024-01-05",
    )
    assert [(p.section, p.text) for p in sp.paragraphs] == [
        ("一、形势", "全年事故下降。"),
        ("二、任务", "要压实责任。"),
    ]
