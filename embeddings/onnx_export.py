"""Export a local sentence-transformers folder to ONNX (token embeddings out) and int8 builds of it, once.

The folder ``<models>/<name>-onnx/`` holds ``model.onnx`` (fp32), ``model.int8.onnx`` (dynamic int8 weights,
onnxruntime), ``model.ov-int8.xml`` + ``.bin`` (static int8, OpenVINO; calibrated on public training data, and
absent, with the reason in export.json, when that data or OpenVINO is missing), ``tokenizer.json`` and
``export.json`` (source fingerprint, versions, quantization options, self-check cosines). Pooling stays outside
the graph: the encoder mean-pools the token vectors with the attention mask in numpy, which is also what
sentence spans need.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import logging
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from data.errors import EmbeddingModelError
from data.files import sha256_file
from data.shared import default_data_roots
from embeddings.convert import CONVERSION_FILE, _version, _write_json, building_dir
from embeddings.identity import base_id, fingerprint, resolve_prefixes

logger = logging.getLogger(__name__)

EXPORT_FILE = "export.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
OPENVINO_FILE = "model.ov-int8.xml"
OPENVINO_WEIGHTS = "model.ov-int8.bin"
# Bump when the ONNX graphs or their files change, so older exports are rebuilt. The OpenVINO build has its own
# "version" in OPENVINO_QUANTIZATION: bumping that (or adding the build, as issue 10 did) adds it to an
# existing export without redoing the fp32 and int8 files.
EXPORTER_VERSION = 1
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "last_hidden_state"
# Measured on the converted multilingual-e5-small against torch fp32 over 202 gold questions, corpus
# sentences and paragraphs (query + passage): per-tensor weights gave mean cosine 0.988 / min 0.979,
# per-channel 0.997 / 0.994. Keeping the 250k-row word-embedding Gather in fp32 changed nothing measurable
# (0.997 / 0.993) and would keep 290 MB more on disk, so it is quantized too.
QUANTIZATION: dict[str, Any] = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "weight_type": "QInt8",
    "per_channel": True,
    "reduce_range": False,
    "op_types": ["MatMul", "Gather"],
    "nodes_excluded": [],
}
# Texts the export is checked on: ONNX fp32 must reproduce torch, padded or not; int8 is measured.
PROBES = (
    "query: 丽泽金融商务区的发展定位是什么？",
    "passage: 坚持以党的政治建设为统领，深入学习贯彻习近平新时代中国特色社会主义思想，推动首都高质量发展。",
    "query: 如何优化营商环境",
    "passage: 2022年7月9日，GDP增长6.5%，投资达到1,234.56亿元。Fintech 与 green finance 是两个重点方向。",
    "passage: 短句",
)
FP32_MIN_COSINE = 0.9999

# The OpenVINO build: NNCF static int8, activations too, with scales fixed by calibration. So the attention's
# Q.K^T MatMul runs in int8 as well (softmax.V stays float), where onnxruntime's dynamic int8 keeps attention
# fp32 (~40% of its time at 357 tokens); and a vector does not move with the other texts in its batch. The
# settings and the calibration selection are the ones measured for issue 10 (/tmp experiments, one thread,
# 64 CMRC2018 dev paragraphs in batches of 8): 15.3 passages/s (17.9 with the bf16 hint) against 9.3-10.4 for
# model.int8.onnx, cosine with onnxruntime fp32 mean 0.9991-0.9994, min 0.9987 (model.int8.onnx: 0.9974 /
# 0.9949). Calibration texts come from public training data only: the CMRC2018 *trial* split, never
# cmrc2018_dev.json, the built-in corpus or data/eval (those are acceptance data). The selection is fixed, so a
# rebuild is reproducible (this one reproduced the experiment's IR byte for byte): the first 120 paragraph
# contexts and the first 180 questions in file order (of 256 and 1,002), each with its prefix, a batch of one.
CALIBRATION_FILE = "cmrc2018/cmrc2018_trial.json"  # under the benchmarks folder (data.shared)
OPENVINO_QUANTIZATION: dict[str, Any] = {
    "version": 1,
    "method": "nncf.quantize",
    "model_type": "TRANSFORMER",
    "preset": "default (MIXED)",
    "calibration": CALIBRATION_FILE,
    "passages": 120,
    "queries": 180,
    "selection": "first paragraph contexts and first questions in file order, prefixed, one text per batch",
}
# What makes a later start try again an OpenVINO build that could not be made: the calibration data turning up
# (cheap to check) or OpenVINO and NNCF being installed. A build that failed for another reason is not retried
# on every start (each try quantizes for a minute); the warning says how to retry.
Retry = Literal["calibration", "install"]


class ExportUnsupportedError(EmbeddingModelError):
    """The folder is not a Transformer -> mean Pooling (-> Normalize) sentence-transformers model."""


def export_dir_for(source: Path, models_dir: Path) -> Path:
    return Path(models_dir) / f"{Path(source).name}-onnx"


def read_export(folder: Path) -> dict[str, Any]:
    """The export's ``export.json``; raises EmbeddingModelError when it is missing or unreadable."""
    try:
        return json.loads((Path(folder) / EXPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmbeddingModelError(
            f"No usable ONNX export at {folder}: {exc}.",
            fix="Run `speechqa model` to export it, or set SPEECHQA_RUNTIME=torch.",
        ) from exc


def ensure_onnx_export(source: Path, models_dir: Path, *, benchmarks_dir: Path | None = None) -> Path:
    """Return the ONNX export of ``source`` under ``models_dir``, exporting once if missing or stale.

    ``benchmarks_dir`` is the public benchmarks folder the OpenVINO build calibrates on (default: found as
    evaluation finds it, ``../shared/benchmarks``). An export made before the OpenVINO build existed gains it
    here, once, without redoing the ONNX files.
    """
    source = Path(source).resolve()
    dest = export_dir_for(source, models_dir)
    source_fp = fingerprint(source)
    calibration = calibration_file(benchmarks_dir)
    if _missing(dest, source_fp, calibration) is None:
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock_file = (dest.parent / f".{dest.name}.lock").open("a")
    except OSError as exc:
        raise EmbeddingModelError(
            f"Cannot use the model cache directory {dest.parent}: {exc.strerror or exc}.",
            fix="Point the cache directory (SPEECHQA_HOME) at a writable location.",
        ) from exc
    with lock_file:
        # Two processes starting at once export once: the second waits here, then finds it fresh.
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        missing = _missing(dest, source_fp, calibration)
        if missing is None:
            return dest
        for pattern in (f".{dest.name}.tmp-*", f".{dest.name}.old-*"):
            for leftover in dest.parent.glob(pattern):
                shutil.rmtree(leftover, ignore_errors=True)  # from an export that was killed
        if missing == "openvino":
            logger.info("adding the OpenVINO int8 build to %s", dest)
            return add_openvino(dest, calibration)
        logger.info("exporting %s to ONNX (fp32 + int8) and OpenVINO (int8) into %s", source, dest)
        return export_onnx(source, dest, source_fingerprint=source_fp, calibration=calibration)


def calibration_file(benchmarks_dir: Path | None = None) -> Path | None:
    """The OpenVINO build's calibration data under ``benchmarks_dir`` (default: ``data.shared``'s roots)."""
    roots = [Path(benchmarks_dir)] if benchmarks_dir is not None else default_data_roots()
    for root in roots:
        if (root / CALIBRATION_FILE).is_file():
            return (root / CALIBRATION_FILE).resolve()
    return None


def _missing(dest: Path, source_fp: str, calibration: Path | None) -> Literal["all", "openvino"] | None:
    """What an export at ``dest`` lacks: everything (stale or absent), the OpenVINO build only, or nothing."""
    if not _is_fresh(dest, source_fp):
        return "all"
    build = read_export(dest).get("openvino") or {}
    if build.get("quantization") != OPENVINO_QUANTIZATION:
        return "openvino"
    if build.get("status") == "built":
        have = all((dest / name).is_file() for name in (OPENVINO_FILE, OPENVINO_WEIGHTS))
        return None if have else "openvino"
    retry = build.get("retry")
    if (retry == "calibration" and calibration is not None) or (retry == "install" and _openvino_installed()):
        return "openvino"
    return None


def _openvino_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def _is_fresh(dest: Path, source_fp: str) -> bool:
    """The ONNX files (fp32, int8, tokenizer) are there and were made from this source by this exporter."""
    if not all((dest / name).is_file() for name in (EXPORT_FILE, FP32_FILE, INT8_FILE, TOKENIZER_FILE)):
        return False
    try:
        info = read_export(dest)
    except EmbeddingModelError:
        return False
    return (
        info.get("exporter_version") == EXPORTER_VERSION
        and info.get("source_fingerprint") == source_fp
        and info.get("opset") == OPSET
        and info.get("quantization") == QUANTIZATION
    )


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise ExportUnsupportedError(f"Cannot read {path}: {exc}.") from exc


def describe_source(source: Path) -> dict[str, Any]:
    """What the encoder needs to know about a sentence-transformers folder; raises if it cannot be exported."""
    modules = _read_json(source / "modules.json", None)
    if not modules:
        raise ExportUnsupportedError(f"{source} has no modules.json: not a sentence-transformers folder.")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ExportUnsupportedError(
            f"{source} has modules {kinds}; the ONNX runtime supports Transformer -> Pooling."
        )
    transformer = source / modules[0].get("path", "")
    pooling = _read_json(source / modules[1].get("path", "") / "config.json", {})
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ExportUnsupportedError(f"{source} pools with {modes}; the ONNX runtime mean-pools only.")
    if not (transformer / TOKENIZER_FILE).is_file():
        raise ExportUnsupportedError(f"{transformer} has no fast tokenizer ({TOKENIZER_FILE}).")
    config = _read_json(transformer / "config.json", {})
    st_config = _read_json(transformer / "sentence_bert_config.json", {})
    if st_config.get("do_lower_case"):
        raise ExportUnsupportedError(f"{source} lower-cases outside its tokenizer; not supported.")
    saved = dict((_read_json(source / "config_sentence_transformers.json", {}) or {}).get("prompts") or {})
    model_base = base_id(str(source), source)
    query_prefix, passage_prefix = resolve_prefixes((str(source), model_base), saved, None, None)
    return {
        "transformer_dir": transformer,
        "base_id": model_base,
        "prefixes": {"query": query_prefix, "passage": passage_prefix},
        "dim": int(config.get("hidden_size") or pooling.get("word_embedding_dimension")),
        "max_seq_length": int(st_config.get("max_seq_length") or 512),
        "pad_token_id": int(config.get("pad_token_id") or 0),
    }


def export_onnx(
    source: Path, dest: Path, *, source_fingerprint: str | None = None, calibration: Path | None = None
) -> Path:
    """Export ``source`` into ``dest`` (built in a temporary sibling and renamed into place); the OpenVINO build
    is calibrated on ``calibration`` (``calibration_file()``) and left out, with the reason, without it."""
    started = time.perf_counter()
    source = Path(source).resolve()
    info = describe_source(source)
    with building_dir(dest, "the ONNX export", "the export needs about 600 MB") as tmp:
        transformer_dir: Path = info.pop("transformer_dir")
        shutil.copyfile(transformer_dir / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        ids, mask = _probe_batch(tmp / TOKENIZER_FILE, info["max_seq_length"], info["pad_token_id"])
        reference = _export_fp32(transformer_dir, tmp / FP32_FILE, ids, mask)
        _quantize(tmp / FP32_FILE, tmp / INT8_FILE)
        check = _self_check(tmp, ids, mask, reference)
        info["openvino"] = _build_openvino(tmp, info, calibration)
        _write_json(
            tmp / EXPORT_FILE,
            {
                "source": source.name,
                "source_fingerprint": source_fingerprint or fingerprint(source),
                "source_conversion": _read_json(source / CONVERSION_FILE, None),
                **info,
                "exporter_version": EXPORTER_VERSION,
                "opset": OPSET,
                "inputs": list(INPUT_NAMES),
                "output": OUTPUT_NAME,
                "pooling": "mean over attention mask, outside the graph",
                "quantization": QUANTIZATION,
                "self_check": check,
                "versions": {
                    dist: _version(dist)
                    for dist in ("torch", "transformers", "onnx", "onnxruntime", "tokenizers")
                },
            },
        )
    logger.info(
        "exported %s to ONNX in %.1f s (int8 vs torch fp32: min cosine %.4f)",
        source.name,
        time.perf_counter() - started,
        check["int8_min_cosine"],
    )
    return dest


def add_openvino(dest: Path, calibration: Path | None) -> Path:
    """Give an existing export (fresh ONNX files) its OpenVINO build, atomically as a whole export: the ONNX
    files are hard-linked (copied across file systems) into a temporary sibling, which is renamed into place."""
    info = read_export(dest)
    with building_dir(dest, "the OpenVINO build", "it needs about 150 MB more") as tmp:
        for path in dest.iterdir():
            # export.json is written anew below, never through a link to the live one.
            if path.is_file() and path.name not in (EXPORT_FILE, OPENVINO_FILE, OPENVINO_WEIGHTS):
                _link_or_copy(path, tmp / path.name)
        info["openvino"] = _build_openvino(tmp, info, calibration)
        _write_json(tmp / EXPORT_FILE, info)
    return dest


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# The INFERENCE_PRECISION_HINT of the OpenVINO build: f32 on every CPU, so a text gets the same vector on every
# machine and `speechqa train` rebuilds the shipped model anywhere. With bf16 (once used where the CPU lists BF16)
# the vectors depended on the CPU's code path: on one Sapphire Rapids host, 48 CMRC2018 dev paragraphs and 200
# questions differed by up to 2.5e-3 / 3.7e-3 per coordinate between its AMX path and its AVX512-BF16 one (what an
# AMD EPYC Zen 4 runs), and the model trained there came out with other thresholds (0.0477 against 0.0562) from
# the same data. With f32 the same texts were bit-identical under ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16,
# AVX512_CORE_VNNI and the default AMX (only an AVX2-only CPU, without VNNI's int8, differs: 1.4e-2). Speed: on that
# host f32 ran 17.8 passages/s and 4.4 ms a question against bf16's 16.9 and 4.9 ms; on the EPYC, bf16 had ingested
# 17.9 passages/s against f32's 15.3, questions the same within noise (2026-12-07, /tmp experiments).
OPENVINO_PRECISION = "f32"


def calibration_texts(calibration: Path, prefixes: dict[str, str]) -> tuple[list[str], list[str]]:
    """OPENVINO_QUANTIZATION's selection from ``calibration`` (CMRC2018 trial), prefixed as the encoder does:
    (passages, queries)."""
    data = json.loads(calibration.read_text(encoding="utf-8"))["data"]
    paragraphs = [p["context"] for article in data for p in article["paragraphs"]]
    questions = [q["question"] for article in data for p in article["paragraphs"] for q in p["qas"]]
    return (
        [prefixes.get("passage", "") + t for t in paragraphs[: OPENVINO_QUANTIZATION["passages"]]],
        [prefixes.get("query", "") + t for t in questions[: OPENVINO_QUANTIZATION["queries"]]],
    )


def _build_openvino(folder: Path, info: dict[str, Any], calibration: Path | None) -> dict[str, Any]:
    """Quantize ``folder``'s fp32 graph into the OpenVINO build; what export.json records about it.

    Never raises for a missing or failing OpenVINO: the ONNX runtimes work without it, so the install goes on
    with a warning and the record says why (the encoder factory then runs onnx-int8 instead).
    """
    record: dict[str, Any] = {
        "file": OPENVINO_FILE,
        "quantization": OPENVINO_QUANTIZATION,
        "versions": {dist: _version(dist) for dist in ("openvino", "nncf")},
    }

    def unavailable(reason: str, retry: Retry | None) -> dict[str, Any]:
        logger.warning("no OpenVINO int8 build for %s (onnx-int8 stays in use): %s", info["base_id"], reason)
        for name in (OPENVINO_FILE, OPENVINO_WEIGHTS):
            (folder / name).unlink(missing_ok=True)
        return {**record, "status": "unavailable", "reason": reason, "retry": retry}

    if calibration is None:
        roots = ", ".join(str(r) for r in default_data_roots())
        return unavailable(
            f"its calibration data {CALIBRATION_FILE} was not found under {roots}; "
            "set SPEECHQA_BENCHMARKS_DIR to the benchmarks folder and run `speechqa model`",
            "calibration",
        )
    if not _openvino_installed():
        return unavailable("openvino or nncf is not installed", "install")
    started = time.perf_counter()
    try:
        passages, queries = calibration_texts(calibration, info["prefixes"])
        _quantize_openvino(folder, passages + queries, info["max_seq_length"])
        check = _openvino_self_check(folder, info["max_seq_length"], info["pad_token_id"])
    except Exception as exc:  # OpenVINO and NNCF raise their own types from C++ and Python
        return unavailable(
            f"{type(exc).__name__}: {exc}; remove {folder.name} and run `speechqa model` to try again", None
        )
    record.update(
        status="built",
        calibration={
            "file": str(calibration),
            "sha256": sha256_file(calibration),
            "passages": len(passages),
            "queries": len(queries),
        },
        self_check=check,
        seconds=round(time.perf_counter() - started, 1),
    )
    logger.info(
        "built the OpenVINO int8 build in %.1f s (vs fp32: min cosine %.4f, %s)",
        record["seconds"],
        check["min_cosine"],
        check["precision_hint"],
    )
    return record


def import_nncf() -> Any:
    """nncf, imported with its usage telemetry off.

    NNCF sends usage events to Google Analytics unless a consent file in ~/intel says no (it never asks: it
    turns its opt-in dialog off) and counts runs in ~/intel/stats; the install step of a service that runs
    offline must not phone home or write outside its cache. It reads two switches once, at import: CI (its
    telemetry library then declines and writes nothing) and NNCF_CI (nncf then uses its telemetry stub). They
    are set for the import only; the one import here is the only one in the package.
    """
    saved = {name: os.environ.get(name) for name in ("CI", "NNCF_CI")}
    os.environ.update(CI="true", NNCF_CI="1")
    try:
        import nncf
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return nncf


def _quantize_openvino(folder: Path, texts: list[str], max_len: int) -> None:
    import openvino as ov
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_len)
    items = [
        {
            "input_ids": np.asarray([e.ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(e.ids)), np.int64),
        }
        for e in tokenizer.encode_batch(texts)
    ]
    model = ov.Core().read_model(folder / FP32_FILE)
    nncf = import_nncf()
    # NNCF logs INFO lines to stdout, where `speechqa model` prints its own result.
    level = logging.getLogger("nncf").level
    nncf.set_log_level(logging.ERROR)
    try:
        quantized = nncf.quantize(
            model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(items)
        )
    finally:
        nncf.set_log_level(level)
    ov.save_model(quantized, folder / OPENVINO_FILE)  # defaults, as measured; writes the .bin beside it


def _openvino_self_check(folder: Path, max_len: int, pad_id: int) -> dict[str, Any]:
    """The OpenVINO build against onnxruntime fp32 (which the export holds equal to torch) on PROBES, batched
    (padded) and one by one, with the precision hint the encoder will use on this CPU."""
    import onnxruntime as ort
    import openvino as ov

    ids, mask = _probe_batch(folder / TOKENIZER_FILE, max_len, pad_id)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(folder / FP32_FILE), options, providers=["CPUExecutionProvider"])
    want = mean_pool(session.run(None, {"input_ids": ids, "attention_mask": mask})[0], mask)
    hint = OPENVINO_PRECISION
    compiled = ov.Core().compile_model(
        folder / OPENVINO_FILE, "CPU", {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": hint}
    )
    request = compiled.create_infer_request()

    def run(i: np.ndarray, m: np.ndarray) -> np.ndarray:
        return mean_pool(request.infer({"input_ids": i, "attention_mask": m})[compiled.output(0)], m)

    batched = run(ids, mask)
    single = np.vstack([run(i[m == 1][None], m[m == 1][None]) for i, m in zip(ids, mask, strict=True)])
    cosines = np.concatenate([(batched * want).sum(1), (single * want).sum(1)])
    return {
        "reference": "onnxruntime fp32",
        "precision_hint": hint,
        "min_cosine": round(float(cosines.min()), 6),
        "mean_cosine": round(float(cosines.mean()), 6),
    }


def _probe_batch(tokenizer_file: Path, max_len: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """PROBES tokenized and padded: the export traces a batch with padding, so the mask stays in the graph."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_len)
    encodings = tokenizer.encode_batch(list(PROBES))
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    for i, e in enumerate(encodings):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return ids, mask


def _export_fp32(transformer_dir: Path, out: Path, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Write the fp32 graph; returns torch's token vectors for the probe batch."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        # Eager attention writes the masked softmax into the graph. The trace also runs on a padded batch
        # (_probe_batch): transformers' mask helpers branch in Python on the mask's contents, and a trace
        # freezes the branch it took; an earlier export lost cosine (0.984) on padded batches. The self-check
        # below compares padded and unpadded runs with torch either way.
        model = AutoModel.from_pretrained(transformer_dir, attn_implementation="eager", local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ExportUnsupportedError(f"transformers cannot load {transformer_dir}: {exc}") from exc
    model.eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    wrapper = TokenEmbeddings(model).eval()
    args = (torch.from_numpy(ids), torch.from_numpy(mask))
    axes = {0: "batch", 1: "sequence"}
    with torch.inference_mode():
        reference = wrapper(*args).float().numpy()
    with warnings.catch_warnings():
        # TorchScript-based export: the dynamo exporter needs onnxscript and targets opset 18+. Its
        # deprecation and tracer warnings are about shape arithmetic that the dynamic axes cover.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            args,
            str(out),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_axes={name: axes for name in (*INPUT_NAMES, OUTPUT_NAME)},
            dynamo=False,
        )
    return reference


def _quantize(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs a line per node on the root logger (and suggests a pre-processing pass that only
    # matters for static quantization); keep that out of `speechqa model` output.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            fp32,
            int8,
            op_types_to_quantize=QUANTIZATION["op_types"],
            per_channel=QUANTIZATION["per_channel"],
            reduce_range=QUANTIZATION["reduce_range"],
            weight_type=QuantType.QInt8,
            nodes_to_exclude=QUANTIZATION["nodes_excluded"],
        )
    finally:
        root.setLevel(level)


def mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors where ``mask`` is 1, L2-normalized: padding never counts."""
    weights = mask[..., None].astype(np.float32)
    summed = (tokens * weights).sum(axis=1)
    pooled = summed / np.maximum(weights.sum(axis=1), 1e-9)
    return (pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def _self_check(folder: Path, ids: np.ndarray, mask: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """fp32 ONNX must equal torch padded and unpadded; the int8 build's distance from torch is recorded."""
    import onnxruntime as ort

    want = mean_pool(reference, mask)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    result: dict[str, float] = {}
    for label, name in (("fp32", FP32_FILE), ("int8", INT8_FILE)):
        session = ort.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])
        batched = mean_pool(session.run(None, {"input_ids": ids, "attention_mask": mask})[0], mask)
        single = np.vstack(
            [
                mean_pool(
                    session.run(None, {"input_ids": i[m == 1][None], "attention_mask": m[m == 1][None]})[0],
                    m[m == 1][None],
                )
                for i, m in zip(ids, mask, strict=True)
            ]
        )
        result[f"{label}_min_cosine"] = round(
            float(min((batched * want).sum(1).min(), (single * want).sum(1).min())), 6
        )
    if result["fp32_min_cosine"] < FP32_MIN_COSINE:
        raise EmbeddingModelError(
            f"The ONNX export does not reproduce the torch model (min cosine {result['fp32_min_cosine']}).",
            fix="Report it with the versions in export.json; set SPEECHQA_RUNTIME=torch meanwhile.",
        )
    return result
