"""One factory from settings to an encoder: which model (default or a local folder) on which runtime."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, get_args

from embeddings.convert import ensure_default_model
from embeddings.encoder import Encoder
from embeddings.st_encoder import DEFAULT_ALIASES, DEFAULT_BATCH_SIZE, load_encoder

logger = logging.getLogger(__name__)

Runtime = Literal["openvino-int8", "onnx-int8", "onnx-fp32", "torch"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)
# openvino-int8 runs questions and passages on OpenVINO static int8 (ingest 5.0-5.3x torch against 3.1x for
# onnx-int8, closer to fp32, and batch-invariant so the server batches questions; embeddings/onnx_encoder.
# OpenVinoEncoder, docs/benchmarks.md). Where the export has no OpenVINO build (no calibration data or no
# OpenVINO at install), it runs as onnx-int8 and the log says why.
DEFAULT_RUNTIME: Runtime = "openvino-int8"
# Below this an int8 build of a model is not used: its export self-check compares it with fp32 on a few
# probe texts (the default model scores ~0.995 there; tests/test_onnx_encoder.py checks 200+ texts).
MIN_INT8_COSINE = 0.97


def create_encoder(
    model: str = "default",
    *,
    runtime: Runtime = DEFAULT_RUNTIME,
    cache_dir: Path,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    benchmarks_dir: Path | None = None,
    concurrency: int | None = None,
) -> Encoder:
    """The encoder for ``model`` on ``runtime``; ONNX builds are exported once into ``cache_dir/models``.

    A model other than the default runs on ONNX too when it is a local sentence-transformers folder with
    mean pooling (exported the same way, into ``<name>-onnx``); anything else (a CLS-pooling model, a
    name from the Hugging Face cache, an int8 build too far from fp32) runs on torch, and the log says why.
    ``benchmarks_dir`` is where the export finds the OpenVINO build's calibration data (default
    ``../shared/benchmarks``); without it openvino-int8 runs as onnx-int8. ``concurrency`` is how many calls
    may run at once (OpenVINO's streams; onnxruntime needs no such setting): default the larger of
    ``threads`` and the cores.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, not {runtime!r}")
    if runtime != "torch":
        models_dir = Path(cache_dir) / "models"
        if model in DEFAULT_ALIASES:
            source: Path | None = ensure_default_model(models_dir)
        else:
            candidate = Path(model).expanduser()
            source = candidate.resolve() if candidate.is_dir() else None
        reason = _onnx_or_reason(source, models_dir, runtime, benchmarks_dir)
        if isinstance(reason, Path) and runtime == "openvino-int8":
            from embeddings.onnx_encoder import OpenVinoEncoder

            missing = _openvino_missing(reason)
            if missing is None:
                return OpenVinoEncoder(
                    reason,
                    threads=threads,
                    concurrency=concurrency,
                    batch_size=batch_size,
                    query_prefix=query_prefix,
                    passage_prefix=passage_prefix,
                )
            logger.warning(
                "embedding model %s runs on onnx-int8 instead of openvino-int8: %s", model, missing
            )
            runtime = "onnx-int8"
        if isinstance(reason, Path):
            from embeddings.onnx_encoder import OnnxEncoder

            return OnnxEncoder(
                reason,
                precision="int8" if runtime == "onnx-int8" else "fp32",
                threads=threads,
                batch_size=batch_size,
                query_prefix=query_prefix,
                passage_prefix=passage_prefix,
            )
        logger.warning("embedding model %s runs on torch instead of %s: %s", model, runtime, reason)
    return load_encoder(
        model,
        cache_dir=cache_dir,
        query_prefix=query_prefix,
        passage_prefix=passage_prefix,
        threads=threads,
        batch_size=batch_size,
    )


def _onnx_or_reason(
    source: Path | None, models_dir: Path, runtime: str, benchmarks_dir: Path | None
) -> Path | str:
    """The export folder to use, or why there is none."""
    from embeddings.onnx_export import ExportUnsupportedError, ensure_onnx_export, read_export

    if source is None:
        return (
            "ONNX exports are made from a local sentence-transformers folder, and this is a cached hub name"
        )
    try:
        export = ensure_onnx_export(source, models_dir, benchmarks_dir=benchmarks_dir)
    except ExportUnsupportedError as exc:
        return str(exc)
    if runtime in ("onnx-int8", "openvino-int8"):  # openvino-int8 falls back to the onnx int8 build
        cosine = float(read_export(export).get("self_check", {}).get("int8_min_cosine", 0.0))
        if cosine < MIN_INT8_COSINE:
            return f"its int8 build is at cosine {cosine:.4f} from fp32 (< {MIN_INT8_COSINE}); use onnx-fp32"
    return export


def _openvino_missing(export: Path) -> str | None:
    """Why the export's OpenVINO build cannot be used (None: it can). Reads files only: openvino is imported
    when the encoder compiles the build."""
    import importlib.util

    from embeddings.onnx_export import OPENVINO_FILE, OPENVINO_WEIGHTS, read_export

    build = read_export(export).get("openvino") or {}
    if build.get("status") != "built":
        return f"the export has no OpenVINO build ({build.get('reason') or 'made before there was one'})"
    if not all((export / name).is_file() for name in (OPENVINO_FILE, OPENVINO_WEIGHTS)):
        return f"{OPENVINO_FILE} is missing from {export}; run `speechqa model`"
    if importlib.util.find_spec("openvino") is None:
        return "openvino is not installed"
    cosine = float(build.get("self_check", {}).get("min_cosine", 0.0))
    if cosine < MIN_INT8_COSINE:
        return f"its OpenVINO build is at cosine {cosine:.4f} from fp32 (< {MIN_INT8_COSINE})"
    return None
