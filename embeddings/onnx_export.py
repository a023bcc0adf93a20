"""Export a local sentence-transformers folder to ONNX (token embeddings out) and an int8 build of it, once.

The folder ``<models>/<name>-onnx/`` holds ``model.onnx`` (fp32), ``model.int8.onnx`` (dynamic int8 weights),
``tokenizer.json`` and ``export.json`` (source fingerprint, versions, quantization options, self-check
cosines). Pooling stays outside the graph: the encoder mean-pools the token vectors with the attention mask
in numpy, which is also what sentence spans need.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from data.errors import EmbeddingModelError
from embeddings.convert import CONVERSION_FILE, _version, _write_json, building_dir
from embeddings.identity import base_id, fingerprint, resolve_prefixes

logger = logging.getLogger(__name__)

EXPORT_FILE = "export.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
# Bump when the graph or the files change, so older exports are rebuilt.
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


def ensure_onnx_export(source: Path, models_dir: Path) -> Path:
    """Return the ONNX export of ``source`` under ``models_dir``, exporting once if missing or stale."""
    source = Path(source).resolve()
    dest = export_dir_for(source, models_dir)
    source_fp = fingerprint(source)
    if _is_fresh(dest, source_fp):
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
        if _is_fresh(dest, source_fp):
            return dest
        for pattern in (f".{dest.name}.tmp-*", f".{dest.name}.old-*"):
            for leftover in dest.parent.glob(pattern):
                shutil.rmtree(leftover, ignore_errors=True)  # from an export that was killed
        logger.info("exporting %s to ONNX (fp32 + int8) into %s", source, dest)
        return export_onnx(source, dest, source_fingerprint=source_fp)


def _is_fresh(dest: Path, source_fp: str) -> bool:
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


def export_onnx(source: Path, dest: Path, *, source_fingerprint: str | None = None) -> Path:
    """Export ``source`` into ``dest`` (built in a temporary sibling and renamed into place)."""
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
