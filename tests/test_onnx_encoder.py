"""The ONNX and OpenVINO runtimes give the torch model's vectors: a tiny model exactly or nearly (fast), the real
e5 within cosine bounds."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from embeddings import onnx_export
from embeddings.encoder import Encoder
from tests.conftest import GOLD, REPO, speechqa_home
from tests.test_embeddings import _tiny_st_model

MEAN_COSINE = 0.99
MIN_COSINE = 0.97
BENCHMARKS = REPO.parent / "shared" / "benchmarks"
CMRC_TRIAL = BENCHMARKS / "cmrc2018" / "cmrc2018_trial.json"
# The OpenVINO build calibrates on CMRC2018 trial; without it there is no build to test (its absence is tested).
needs_trial = pytest.mark.skipif(not CMRC_TRIAL.is_file(), reason=f"{CMRC_TRIAL} not present")


# ------------------------------------------------------------------------------------- tiny model, fast


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-onnx")
    source = _tiny_st_model(root / "tiny-e5-small")
    return source, onnx_export.ensure_onnx_export(source, root / "models", benchmarks_dir=BENCHMARKS)


def _tiny_texts() -> list[str]:
    return [
        "中国的首都是哪里？",
        "abc",
        "首都",
        "这个句子生成表示以用于检索相关文章 0123456789",
        "是",
        "abc def ghi",
    ]


def test_export_writes_both_builds_and_records_what_it_was_made_from(tiny):
    source, export = tiny
    assert export == source.parent / "models" / "tiny-e5-small-onnx"
    info = json.loads((export / "export.json").read_text())
    assert info["source_fingerprint"] and info["opset"] == 17 and info["quantization"]["per_channel"] is True
    assert info["prefixes"] == {"query": "query: ", "passage": "passage: "}
    assert info["self_check"]["fp32_min_cosine"] >= 0.9999
    assert {"torch", "onnxruntime", "onnx", "tokenizers"} <= set(info["versions"])
    for name in ("model.onnx", "model.int8.onnx", "tokenizer.json"):
        assert (export / name).is_file()
    assert not list(export.parent.glob(".*tmp-*"))


@needs_trial
def test_export_adds_an_openvino_build_calibrated_on_public_training_data_only(tiny):
    _, export = tiny
    build = json.loads((export / "export.json").read_text())["openvino"]
    assert build["status"] == "built" and (export / "model.ov-int8.xml").is_file()
    assert (export / "model.ov-int8.bin").is_file()
    assert build["quantization"] == onnx_export.OPENVINO_QUANTIZATION
    assert build["calibration"]["file"].endswith("cmrc2018/cmrc2018_trial.json")
    assert (build["calibration"]["passages"], build["calibration"]["queries"]) == (120, 180)
    assert set(build["versions"]) == {"openvino", "nncf"} and "unknown" not in build["versions"].values()
    assert build["self_check"]["min_cosine"] >= 0.99
    assert build["self_check"]["precision_hint"] == onnx_export.OPENVINO_PRECISION == "f32"


@needs_trial
def test_calibration_takes_the_first_trial_paragraphs_and_questions_in_file_order():
    data = json.loads(CMRC_TRIAL.read_text(encoding="utf-8"))["data"]
    passages, queries = onnx_export.calibration_texts(CMRC_TRIAL, {"query": "q: ", "passage": "p: "})
    assert len(passages) == 120 and len(queries) == 180
    assert passages[0] == "p: " + data[0]["paragraphs"][0]["context"]
    assert queries[0] == "q: " + data[0]["paragraphs"][0]["qas"][0]["question"]
    assert onnx_export.calibration_file(BENCHMARKS) == CMRC_TRIAL.resolve()


def test_onnx_fp32_gives_the_torch_vectors_batched_and_one_by_one(tiny):
    from embeddings.onnx_encoder import OnnxEncoder
    from embeddings.st_encoder import SentenceTransformerEncoder

    source, export = tiny
    onnx = OnnxEncoder(export, precision="fp32", threads=1, batch_size=4)
    torch_enc = SentenceTransformerEncoder(source)
    texts = _tiny_texts()
    assert isinstance(onnx, Encoder) and onnx.dim == torch_enc.dim == 16
    for ours, ref in (
        (onnx.encode_queries(texts), torch_enc.encode_queries(texts)),
        (onnx.encode_passages(texts), torch_enc.encode_passages(texts)),
        (np.vstack([onnx.encode_passages([t]) for t in texts]), torch_enc.encode_passages(texts)),
    ):
        assert ours.dtype == np.float32 and ours.shape == (len(texts), 16)
        np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert onnx.encode_queries([]).shape == (0, 16)


def test_onnx_span_vectors_follow_the_torch_span_semantics(tiny):
    from embeddings.onnx_encoder import OnnxEncoder
    from embeddings.st_encoder import SentenceTransformerEncoder

    source, export = tiny
    onnx = OnnxEncoder(export, precision="fp32", threads=1)
    torch_enc = SentenceTransformerEncoder(source)
    texts = ["中国的首都是哪里", "abc def", "是", "x" * 200]  # the last is truncated at 64 tokens
    spans = [[(0, 3), (3, 8)], [], [(0, 1)], [(0, 10), (150, 200)]]
    ours_p, ours_s = onnx.encode_passages_with_spans(texts, spans)
    ref_p, ref_s = torch_enc.encode_passages_with_spans(texts, spans)
    np.testing.assert_allclose(ours_p, ref_p, atol=1e-5)
    for a, b in zip(ours_s, ref_s, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(ours_s[3][1], ours_p[3], atol=1e-6)  # cut off: the paragraph vector


def test_batches_run_side_by_side_give_the_vectors_of_one_thread(tiny):
    """threads=2 runs batches concurrently (ingest); the order of the results and the vectors must not change."""
    from embeddings.onnx_encoder import OnnxEncoder

    _, export = tiny
    texts = [t * k for k in range(1, 5) for t in _tiny_texts()]  # 24 texts of mixed lengths: 6+ batches of 4
    spans = [[(0, min(2, len(t)))] for t in texts]
    one = OnnxEncoder(export, precision="int8", threads=1, batch_size=4)
    two = OnnxEncoder(export, precision="int8", threads=2, batch_size=4)
    np.testing.assert_array_equal(two.encode_passages(texts), one.encode_passages(texts))
    p1, s1 = one.encode_passages_with_spans(texts, spans)
    p2, s2 = two.encode_passages_with_spans(texts, spans)
    np.testing.assert_array_equal(p2, p1)
    for a, b in zip(s2, s1, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_trial
def test_openvino_batches_run_side_by_side_give_the_vectors_of_one_thread(tiny):
    """Two OpenVINO streams (threads=2), each batch on its own thread's InferRequest: same vectors as one."""
    from embeddings.onnx_encoder import OpenVinoEncoder

    _, export = tiny
    texts = [t * k for k in range(1, 5) for t in _tiny_texts()]
    spans = [[(0, min(2, len(t)))] for t in texts]
    one = OpenVinoEncoder(export, threads=1, batch_size=4)
    two = OpenVinoEncoder(export, threads=2, batch_size=4)
    np.testing.assert_allclose(two.encode_passages(texts), one.encode_passages(texts), atol=1e-6)
    p1, s1 = one.encode_passages_with_spans(texts, spans)
    p2, s2 = two.encode_passages_with_spans(texts, spans)
    np.testing.assert_allclose(p2, p1, atol=1e-6)
    for a, b in zip(s2, s1, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


_ENCODE_IN_A_CHILD = """
import sys
import numpy as np
from pathlib import Path
from embeddings.onnx_encoder import OpenVinoEncoder
enc = OpenVinoEncoder(Path(sys.argv[1]), threads=1, batch_size=4)
texts = sys.argv[3:]
np.save(sys.argv[2], np.vstack([enc.encode_passages(texts), enc.encode_queries(texts)]))
"""


@needs_trial
@pytest.mark.parametrize("isa", ["AVX512_CORE_BF16", "AVX512_CORE_VNNI"])
def test_openvino_vectors_are_the_same_on_every_cpu_code_path(tiny, tmp_path, isa):
    """The vectors do not depend on which instructions the CPU offers (AMX, AVX512-BF16 as on an AMD EPYC,
    AVX512-VNNI), here capped with oneDNN's ONEDNN_MAX_CPU_ISA in a child process: the answerability model's
    thresholds were fitted on these vectors, and `speechqa train` must rebuild it on another machine. bf16
    differed between these paths (embeddings.onnx_export.OPENVINO_PRECISION); f32 does not."""
    from embeddings.onnx_encoder import OpenVinoEncoder

    _, export = tiny
    texts = [t * k for k in range(1, 4) for t in _tiny_texts()]
    enc = OpenVinoEncoder(export, threads=1, batch_size=4)
    here = np.vstack([enc.encode_passages(texts), enc.encode_queries(texts)])
    out = tmp_path / "capped.npy"
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
    code = [sys.executable, "-c", _ENCODE_IN_A_CHILD, str(export), str(out), *texts]
    subprocess.run(code, check=True, env=env, cwd=REPO, timeout=300)
    np.testing.assert_array_equal(np.load(out), here)


@needs_trial
def test_openvino_runtime_encodes_queries_and_passages_close_to_fp32_whatever_the_batch(tiny):
    """Queries and passages both run on the OpenVINO build (no onnxruntime session), close to fp32; a text's
    vector is the same alone and in a batch, so the server may batch questions (qa.batching)."""
    from embeddings.onnx_encoder import OnnxEncoder, OpenVinoEncoder

    source, export = tiny
    ov_enc = OpenVinoEncoder(export, threads=1, batch_size=4)
    int8 = OnnxEncoder(export, precision="int8", threads=1, batch_size=4)
    fp32 = OnnxEncoder(export, precision="fp32", threads=1, batch_size=4)
    assert ov_enc.batch_invariant and not int8.batch_invariant and fp32.batch_invariant
    texts = _tiny_texts()
    queries = ov_enc.encode_queries(texts)
    assert float((queries * fp32.encode_queries(texts)).sum(axis=1).min()) >= 0.99
    alone = np.vstack([ov_enc.encode_queries([t]) for t in texts])
    assert float((alone * queries).sum(axis=1).min()) >= 0.9999
    passages = ov_enc.encode_passages(texts)
    assert passages.dtype == np.float32 and passages.shape == (len(texts), 16)
    assert float((passages * fp32.encode_passages(texts)).sum(axis=1).min()) >= 0.99
    span_texts = ["中国的首都是哪里", "abc def", "是", "x" * 200]
    spans = [[(0, 3), (3, 8)], [], [(0, 1)], [(0, 10), (150, 200)]]
    ours_p, ours_s = ov_enc.encode_passages_with_spans(span_texts, spans)
    ref_p, ref_s = fp32.encode_passages_with_spans(span_texts, spans)
    assert ours_p.shape == ref_p.shape and float((ours_p * ref_p).sum(axis=1).min()) >= 0.99
    for a, b in zip(ours_s, ref_s, strict=True):
        assert a.shape == b.shape and a.dtype == np.float32
        if len(a):
            assert float((a * b).sum(axis=1).min()) >= 0.99
    np.testing.assert_allclose(ours_s[3][1], ours_p[3], atol=1e-6)  # cut off: the paragraph vector


def test_model_id_names_the_runtime_so_indexes_and_caches_never_mix(tiny):
    from embeddings.onnx_encoder import OnnxEncoder
    from embeddings.st_encoder import SentenceTransformerEncoder

    source, export = tiny
    torch_id = SentenceTransformerEncoder(source).model_id
    int8_id = OnnxEncoder(export, precision="int8").model_id
    fp32_id = OnnxEncoder(export, precision="fp32").model_id
    ids = [torch_id, int8_id, fp32_id]
    if CMRC_TRIAL.is_file():
        from embeddings.onnx_encoder import OpenVinoEncoder

        ids.append(OpenVinoEncoder(export).model_id)
        assert OpenVinoEncoder(export, passage_prefix="doc: ").model_id.endswith('|p="doc: "')
    assert len(set(ids)) == len(ids)
    base, _, prefixes = torch_id.partition("|")
    assert int8_id == f"{base}+onnx-int8|{prefixes}" and fp32_id == f"{base}+onnx-fp32|{prefixes}"
    assert ids[3:] in ([], [f"{base}+openvino-int8|{prefixes}"])
    assert OnnxEncoder(export, passage_prefix="doc: ").model_id.endswith('|p="doc: "')


def test_every_runtime_shares_the_answerability_calibration_of_its_model(tiny):
    from qa.answerability import model_key

    source, _ = tiny
    key = 'tiny#abc|q="query: "|p="passage: "'
    for runtime in ("onnx-int8", "onnx-fp32", "openvino-int8"):
        assert model_key(f'tiny#abc+{runtime}|q="query: "|p="passage: "') == key
    assert model_key('tiny#abd+openvino-int8|q="query: "|p="passage: "') != key


def test_export_is_reused_while_the_source_is_unchanged_and_redone_after(tmp_path):
    source = _tiny_st_model(tmp_path / "tiny-e5")
    first = onnx_export.ensure_onnx_export(source, tmp_path / "models")
    before = (first / "model.int8.onnx").stat().st_mtime_ns
    assert onnx_export.ensure_onnx_export(source, tmp_path / "models") == first
    assert (first / "model.int8.onnx").stat().st_mtime_ns == before
    old_fp = json.loads((first / "export.json").read_text())["source_fingerprint"]

    other = _tiny_st_model(tmp_path / "other", seed=1)
    shutil.copyfile(other / "model.safetensors", source / "model.safetensors")
    again = onnx_export.ensure_onnx_export(source, tmp_path / "models")
    assert again == first
    assert json.loads((again / "export.json").read_text())["source_fingerprint"] != old_fp


@needs_trial
def test_without_calibration_data_the_export_says_why_and_openvino_runs_as_onnx_int8_until_it_appears(
    tmp_path, caplog
):
    """No benchmarks folder: the install goes on without the OpenVINO build; once the data is there, the next
    start adds the build to the same export without redoing its ONNX files."""
    from embeddings.factory import create_encoder
    from embeddings.onnx_encoder import OnnxEncoder, OpenVinoEncoder

    source = _tiny_st_model(tmp_path / "tiny-e5-small")
    nowhere = tmp_path / "no-benchmarks"
    with caplog.at_level(logging.WARNING):
        enc = create_encoder(str(source), runtime="openvino-int8", cache_dir=tmp_path, benchmarks_dir=nowhere)
    assert type(enc) is OnnxEncoder and "+onnx-int8|" in enc.model_id
    assert (
        "runs on onnx-int8 instead of openvino-int8" in caplog.text and "cmrc2018_trial.json" in caplog.text
    )
    export = tmp_path / "models" / "tiny-e5-small-onnx"
    build = json.loads((export / "export.json").read_text())["openvino"]
    assert build["status"] == "unavailable" and build["retry"] == "calibration"
    assert not (export / "model.ov-int8.xml").exists()
    onnx_inode = (export / "model.onnx").stat().st_ino
    # Still no data: nothing to redo, the same export is used as it is.
    assert onnx_export.ensure_onnx_export(source, tmp_path / "models", benchmarks_dir=nowhere) == export
    assert not (export / "model.ov-int8.xml").exists()

    enc = create_encoder(str(source), runtime="openvino-int8", cache_dir=tmp_path, benchmarks_dir=BENCHMARKS)
    assert isinstance(enc, OpenVinoEncoder) and "+openvino-int8|" in enc.model_id
    assert (export / "model.onnx").stat().st_ino == onnx_inode  # linked into the new export, not re-exported
    assert json.loads((export / "export.json").read_text())["openvino"]["status"] == "built"
    assert not list(export.parent.glob(".*tmp-*")) and not list(export.parent.glob(".*old-*"))


@needs_trial
def test_a_failing_openvino_build_leaves_the_onnx_export_working_and_is_not_retried_on_every_start(
    tmp_path, monkeypatch
):
    from embeddings.factory import create_encoder
    from embeddings.onnx_encoder import OnnxEncoder

    calls = []

    def broken(folder, texts, max_len):
        calls.append(len(texts))
        raise RuntimeError("nncf crashed")

    monkeypatch.setattr(onnx_export, "_quantize_openvino", broken)
    source = _tiny_st_model(tmp_path / "tiny-e5-small")
    enc = create_encoder(str(source), runtime="openvino-int8", cache_dir=tmp_path, benchmarks_dir=BENCHMARKS)
    assert type(enc) is OnnxEncoder and "+onnx-int8|" in enc.model_id
    build = json.loads((tmp_path / "models" / "tiny-e5-small-onnx" / "export.json").read_text())["openvino"]
    assert build["status"] == "unavailable" and "nncf crashed" in build["reason"] and build["retry"] is None
    create_encoder(str(source), runtime="openvino-int8", cache_dir=tmp_path, benchmarks_dir=BENCHMARKS)
    assert calls == [300]


def test_the_openvino_build_sends_no_usage_telemetry_and_writes_nothing_in_home(tmp_path):
    """Imported plainly, nncf sends usage events to Google Analytics (no consent asked) and counts runs in
    ~/intel; the export imports it with that off. A fresh process: under pytest nncf stubs it anyway."""
    code = (
        "from embeddings.onnx_export import import_nncf; import_nncf(); "
        "from nncf.telemetry.decorator import telemetry; from nncf.telemetry.wrapper import NNCFTelemetryStub; "
        "print(isinstance(telemetry, NNCFTelemetryStub))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NNCF_CI")} | {"HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "True"
    assert not (tmp_path / "intel").exists()


def test_a_failed_export_leaves_neither_a_folder_nor_temporary_files(tmp_path, monkeypatch):
    source = _tiny_st_model(tmp_path / "tiny-e5")

    def broken(fp32, int8):
        raise RuntimeError("quantizer crashed")

    monkeypatch.setattr(onnx_export, "_quantize", broken)
    with pytest.raises(RuntimeError):
        onnx_export.ensure_onnx_export(source, tmp_path / "models")
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".tiny-e5-onnx.lock"]


def test_a_model_the_onnx_path_cannot_pool_runs_on_torch_and_says_why(tmp_path, caplog):
    from embeddings.factory import create_encoder
    from embeddings.st_encoder import SentenceTransformerEncoder

    source = _tiny_st_model(tmp_path / "tiny-cls")
    (source / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 16, "pooling_mode_cls_token": True})
    )
    with caplog.at_level(logging.WARNING, logger="embeddings.factory"):
        enc = create_encoder(str(source), runtime="onnx-int8", cache_dir=tmp_path)
    assert isinstance(enc, SentenceTransformerEncoder)
    assert "runs on torch instead of onnx-int8" in caplog.text and "cls_token" in caplog.text


def test_a_local_mean_pooling_model_is_exported_for_the_onnx_runtime(tmp_path):
    from embeddings.factory import create_encoder
    from embeddings.onnx_encoder import OnnxEncoder

    source = _tiny_st_model(tmp_path / "tiny-e5-small")
    enc = create_encoder(str(source), runtime="onnx-fp32", cache_dir=tmp_path, threads=1)
    assert isinstance(enc, OnnxEncoder) and "+onnx-fp32|" in enc.model_id
    assert (tmp_path / "models" / "tiny-e5-small-onnx" / "export.json").is_file()


def test_runtime_setting_comes_from_the_environment(monkeypatch):
    from pydantic import ValidationError

    from api.settings import Settings

    monkeypatch.delenv("SPEECHQA_RUNTIME", raising=False)
    assert Settings().runtime == "openvino-int8"
    for runtime in ("onnx-int8", "onnx-fp32", "torch", "openvino-int8"):
        monkeypatch.setenv("SPEECHQA_RUNTIME", runtime)
        assert Settings().runtime == runtime
    monkeypatch.setenv("SPEECHQA_RUNTIME", "tensorrt")
    with pytest.raises(ValidationError):
        Settings()


def test_importing_the_onnx_encoder_imports_neither_torch_nor_transformers_nor_openvino():
    code = (
        "import sys, embeddings.onnx_encoder, embeddings.factory, api.assemble; "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers', 'openvino', 'nncf') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------------- real model, slow


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[。！？])", text) if len(s.strip()) >= 8]


@pytest.fixture(scope="module")
def parity_texts() -> list[str]:
    questions = [
        json.loads(line)["question"] for line in GOLD.read_text(encoding="utf-8").splitlines() if line
    ]
    corpus = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted((REPO / "data" / "corpus").glob("*.txt"))
    )
    sentences = [s for line in corpus.splitlines() for s in _sentences(line)][:120]
    cmrc = []
    if CMRC_TRIAL.is_file():
        data = json.loads(CMRC_TRIAL.read_text(encoding="utf-8"))
        cmrc = [p["context"] for a in data["data"] for p in a["paragraphs"]][:12]
    texts = questions + sentences + cmrc
    assert len(texts) >= 200
    return texts


@pytest.fixture(scope="module")
def torch_encoder():
    from embeddings.factory import create_encoder

    return create_encoder("default", runtime="torch", cache_dir=speechqa_home(), threads=2)


@pytest.fixture(scope="module", params=["onnx-int8", "onnx-fp32", "openvino-int8"])
def onnx_encoder(request):
    from embeddings.factory import create_encoder
    from embeddings.onnx_encoder import OnnxEncoder, OpenVinoEncoder

    if request.param == "openvino-int8" and not CMRC_TRIAL.is_file():
        pytest.skip("no calibration data for the OpenVINO build")
    enc = create_encoder(
        "default", runtime=request.param, cache_dir=speechqa_home(), threads=2, benchmarks_dir=BENCHMARKS
    )
    assert isinstance(enc, OpenVinoEncoder if request.param == "openvino-int8" else OnnxEncoder)
    assert f"+{request.param}|" in enc.model_id
    return enc


@pytest.fixture(scope="module")
def openvino_and_onnx():
    """The default model on openvino-int8, onnx-fp32 and onnx-int8, to hold the OpenVINO passages against."""
    from embeddings.factory import create_encoder

    if not CMRC_TRIAL.is_file():
        pytest.skip("no calibration data for the OpenVINO build")
    return tuple(
        create_encoder("default", runtime=rt, cache_dir=speechqa_home(), threads=2, benchmarks_dir=BENCHMARKS)
        for rt in ("openvino-int8", "onnx-fp32", "onnx-int8")
    )


@pytest.fixture(scope="module")
def torch_vectors(torch_encoder, parity_texts):
    return torch_encoder.encode_queries(parity_texts), torch_encoder.encode_passages(parity_texts)


def _check(label: str, ours: np.ndarray, ref: np.ndarray, texts: list[str], capsys) -> None:
    cosines = (ours * ref).sum(axis=1)
    with capsys.disabled():
        print(f"\n{label}: {len(cosines)} vectors, mean cosine {cosines.mean():.5f}, min {cosines.min():.5f}")
    worst = [(texts[i % len(texts)][:30], round(float(cosines[i]), 4)) for i in np.argsort(cosines)[:3]]
    assert cosines.mean() >= MEAN_COSINE and cosines.min() >= MIN_COSINE, worst


@pytest.mark.slow
def test_onnx_matches_torch_on_batched_queries_and_passages(
    onnx_encoder, torch_vectors, parity_texts, capsys
):
    ref_q, ref_p = torch_vectors
    ours = np.vstack([onnx_encoder.encode_queries(parity_texts), onnx_encoder.encode_passages(parity_texts)])
    _check(f"{onnx_encoder.model_id} batched", ours, np.vstack([ref_q, ref_p]), parity_texts, capsys)


@pytest.mark.slow
def test_onnx_matches_torch_one_text_at_a_time(onnx_encoder, torch_vectors, parity_texts, capsys):
    ref_q, ref_p = torch_vectors
    q = np.vstack([onnx_encoder.encode_queries([t]) for t in parity_texts])
    p = np.vstack([onnx_encoder.encode_passages([t]) for t in parity_texts])
    _check(
        f"{onnx_encoder.model_id} one by one",
        np.vstack([q, p]),
        np.vstack([ref_q, ref_p]),
        parity_texts,
        capsys,
    )
    # Padding must not move an fp32 vector. int8 quantizes each activation tensor with one dynamic scale, so
    # the other texts in a batch (and their padding) nudge a vector a little: measured min cosine 0.9946.
    batched = onnx_encoder.encode_passages(parity_texts)
    floor = 0.9999 if onnx_encoder.model_id.partition("|")[0].endswith("fp32") else 0.99
    assert float((batched * p).sum(axis=1).min()) >= floor


@pytest.mark.slow
def test_onnx_sentence_span_vectors_match_torch_spans(onnx_encoder, torch_encoder, corpus_speeches, capsys):
    from qa.encode import _spans, dense_prefix

    items = [(dense_prefix(s, p), p) for s in corpus_speeches for p in s.paragraphs if p.sentences][:48]
    texts = [prefix + p.text for prefix, p in items]
    spans = [_spans(prefix, p) for prefix, p in items]
    ours_p, ours_s = onnx_encoder.encode_passages_with_spans(texts, spans)
    ref_p, ref_s = torch_encoder.encode_passages_with_spans(texts, spans)
    _check(f"{onnx_encoder.model_id} span paragraphs", ours_p, ref_p, texts, capsys)
    sentence_texts = [p.text[s.start : s.end] for _, p in items for s in p.sentences]
    _check(
        f"{onnx_encoder.model_id} span sentences", np.vstack(ours_s), np.vstack(ref_s), sentence_texts, capsys
    )


@pytest.mark.slow
def test_eight_threads_at_once_get_the_vectors_of_a_sequential_run(onnx_encoder, parity_texts):
    # Twelve texts a thread: every call of each thread overlaps the others' all the same, and the whole parity set
    # (five encodings of 486 texts, twice) took 60-77 s a runtime on a 2-core AVX2 host, a twentieth of CI.
    chunks = [parity_texts[:96][i::8] for i in range(8)]

    def work(chunk: list[str]) -> list[np.ndarray]:
        spans = [[(0, len(t) // 2), (len(t) // 2, len(t))] for t in chunk]
        passages, sentences = onnx_encoder.encode_passages_with_spans(chunk, spans)
        return [
            onnx_encoder.encode_queries(chunk),
            np.vstack([onnx_encoder.encode_queries([t]) for t in chunk[:5]]),
            onnx_encoder.encode_passages(chunk),
            passages,
            np.vstack(sentences),
        ]

    sequential = [work(c) for c in chunks]
    results: list[list[np.ndarray] | None] = [None] * 8
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(chunks[i])
        except BaseException as exc:  # reported below; a thread's exception would be lost otherwise
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for got, want in zip(results, sequential, strict=True):
        assert got is not None
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_openvino_passages_match_torch_and_onnx_fp32(openvino_and_onnx, torch_vectors, parity_texts, capsys):
    """The passage path alone (ingest, uploads), batched as ingest batches it and one text at a time."""
    ov_enc, fp32, _ = openvino_and_onnx
    ours = ov_enc.encode_passages(parity_texts)
    _check("openvino-int8 passages vs torch fp32", ours, torch_vectors[1], parity_texts, capsys)
    _check(
        "openvino-int8 passages vs onnx fp32", ours, fp32.encode_passages(parity_texts), parity_texts, capsys
    )
    # Static int8 has fixed activation scales, so a batch's other texts and padding move a vector only by
    # f32 rounding (onnxruntime's dynamic int8 moves them to 0.9946, see above).
    single = np.vstack([ov_enc.encode_passages([t]) for t in parity_texts[:60]])
    assert float((single * ours[:60]).sum(axis=1).min()) >= 0.999  # measured 1.00000 (bf16 hint, before f32)


@pytest.mark.slow
def test_openvino_queries_match_torch_and_are_the_same_alone_or_batched(
    openvino_and_onnx, torch_vectors, parity_texts, capsys
):
    ov_enc, _, int8 = openvino_and_onnx
    ours = ov_enc.encode_queries(parity_texts)
    _check("openvino-int8 queries vs torch fp32", ours, torch_vectors[0], parity_texts, capsys)
    alone = np.vstack([ov_enc.encode_queries([t]) for t in parity_texts[:80]])
    assert float((alone * ours[:80]).sum(axis=1).min()) >= 0.9999  # static scales: batch-mates move nothing
    # onnxruntime's dynamic int8 does move them (why it is not batched; measured min 0.995 over 313 questions)
    dyn_alone = np.vstack([int8.encode_queries([t]) for t in parity_texts[:80]])
    assert float((dyn_alone * int8.encode_queries(parity_texts[:80])).sum(axis=1).min()) < 0.9999


@pytest.mark.slow
def test_openvino_span_vectors_have_the_onnx_shapes_and_stay_close_to_onnx_int8(
    openvino_and_onnx, corpus_speeches, capsys
):
    from qa.encode import _spans, dense_prefix

    ov_enc, _, int8 = openvino_and_onnx
    items = [(dense_prefix(s, p), p) for s in corpus_speeches for p in s.paragraphs if p.sentences][:48]
    texts = [prefix + p.text for prefix, p in items]
    spans = [_spans(prefix, p) for prefix, p in items]
    ours_p, ours_s = ov_enc.encode_passages_with_spans(texts, spans)
    ref_p, ref_s = int8.encode_passages_with_spans(texts, spans)
    assert ours_p.shape == ref_p.shape and [a.shape for a in ours_s] == [b.shape for b in ref_s]
    _check("openvino-int8 vs onnx-int8 span paragraphs", ours_p, ref_p, texts, capsys)
    sentence_texts = [p.text[s.start : s.end] for _, p in items for s in p.sentences]
    _check(
        "openvino-int8 vs onnx-int8 span sentences",
        np.vstack(ours_s),
        np.vstack(ref_s),
        sentence_texts,
        capsys,
    )
