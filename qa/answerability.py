"""The learned answerability + sentence model: loads the shipped artifact and scores candidate sentences.

The artifact (``qa/models/answerability/``) is a LightGBM text model plus ``meta.json`` with the feature
names, the decision threshold chosen on a validation split, and the embedding model it was calibrated for.
It is rebuilt by ``speechqa train`` / ``make train`` (training/answerability.py) from public data only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from pathlib import Path

import numpy as np

from data.errors import EmbeddingModelError
from qa.features import FEATURE_NAMES

log = logging.getLogger(__name__)

ARTIFACT_DIR = Path(__file__).resolve().parent / "models" / "answerability"
MODEL_FILE = "model.txt"
META_FILE = "meta.json"


def model_key(encoder_model_id: str) -> str:
    """What a calibration is valid for: the embedding model and its prefixes, not the runtime that runs it.

    An ONNX (fp32, int8) or OpenVINO (int8) build of the same model is held to cosine parity >= 0.99 with fp32
    by its own test (tests/test_onnx_encoder.py), so it shares the fp32 calibration; any other model
    (SPEECHQA_MODEL) needs its own (`speechqa train`).
    """
    base, _, prefixes = encoder_model_id.partition("|")
    base = re.sub(r"\+(?:onnx|openvino)[-\w]*$", "", base)
    return f"{base}|{prefixes}" if prefixes else base


class AnswerabilityModel:
    """P(sentence answers the question) for rows of ``qa.features.FEATURE_NAMES``; thread-safe prediction."""

    def __init__(self, booster, meta: dict) -> None:
        self._booster = booster
        self.meta = meta
        self.threshold = float(meta["threshold"])
        # The gate for questions that ask no fact (training.answerability.OPEN_FALSE_REFUSAL); a model
        # trained before it existed has none, and 0.0 refuses nothing.
        self.open_threshold = float(meta.get("open_threshold", 0.0))
        # The gate for questions asking for one thing, not a list or a way
        # (training.answerability.THING_FALSE_REFUSAL); a model trained before it existed uses the open gate.
        self.thing_threshold = float(meta.get("thing_threshold", self.open_threshold))
        self._lock = threading.Lock()

    @classmethod
    def load(cls, encoder_model_id: str, directory: Path = ARTIFACT_DIR) -> AnswerabilityModel:
        import lightgbm as lgb

        meta_path = directory / META_FILE
        if not meta_path.exists() or not (directory / MODEL_FILE).exists():
            raise EmbeddingModelError(
                f"no answerability model at {directory}",
                fix="build it with `speechqa train` (make train)",
            )
        model_path = directory / MODEL_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise EmbeddingModelError(
                f"the answerability model's {META_FILE} at {directory} is unreadable: {exc}",
                fix="rebuild it with `speechqa train` (make train)",
            ) from exc
        # Read once: the trees that are hashed are the trees that are loaded.
        try:
            model_bytes = model_path.read_bytes()
        except OSError as exc:
            raise EmbeddingModelError(
                f"cannot read the answerability model at {model_path}: {exc}",
                fix="rebuild it with `speechqa train` (make train)",
            ) from exc
        # A model.txt from another training run than its meta.json (one interrupted between the two files, or
        # a file damaged since) would be served with thresholds fitted for other trees.
        wanted_sha = meta.get("model_sha256")
        if wanted_sha is not None and wanted_sha != hashlib.sha256(model_bytes).hexdigest():
            raise EmbeddingModelError(
                f"the answerability model at {directory} does not match its {META_FILE} "
                "(an interrupted training run or a damaged file)",
                fix="rebuild it with `speechqa train` (make train)",
            )
        if tuple(meta.get("features", ())) != FEATURE_NAMES:
            raise EmbeddingModelError(
                f"the answerability model at {directory} was trained on other features",
                fix="retrain it with `speechqa train` (make train)",
            )
        wanted = model_key(encoder_model_id)
        if meta.get("model_key") != wanted:
            raise EmbeddingModelError(
                f"the answerability model was calibrated for the embedding model {meta.get('model_key')!r}, "
                f"but the service uses {wanted!r}: its refusals would not be trustworthy",
                fix="run `speechqa train` to calibrate for this model (with SPEECHQA_ANSWERABILITY_DIR naming a "
                "writable folder where the package's own is not), or unset SPEECHQA_MODEL",
            )
        try:
            booster = lgb.Booster(model_str=model_bytes.decode("utf-8"))
        except (UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
            raise EmbeddingModelError(
                f"cannot read the answerability model at {model_path}: {exc}",
                fix="rebuild it with `speechqa train` (make train)",
            ) from exc
        return cls(booster, meta)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0, dtype=np.float32)
        with self._lock:  # LightGBM's predictor is not documented as re-entrant; a call is ~0.1 ms
            return np.asarray(self._booster.predict(X, num_threads=1), dtype=np.float32)
