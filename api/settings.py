"""Service settings, read from SPEECHQA_* environment variables where the app or CLI is assembled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".cache" / "speechqa"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHQA_", env_file=None, extra="ignore")

    home: Path = Field(default_factory=_default_home, description="models, embedding cache, default index")
    index_dir: Path | None = Field(default=None, description="index directory; default HOME/index")
    model: str = Field(
        default="default", description="'default' (multilingual-e5-small) or a local model path/name"
    )
    runtime: Literal["openvino-int8", "onnx-int8", "onnx-fp32", "torch"] = Field(
        default="openvino-int8",
        description="encoder runtime: OpenVINO on the export's static int8 build (questions batched under load; "
        "onnx-int8 where the export has no OpenVINO build), onnxruntime on the int8 or fp32 ONNX export of the "
        "model, or torch fp32",
    )
    benchmarks_dir: Path | None = Field(
        default=None,
        description="the public benchmarks folder; `speechqa model` calibrates the OpenVINO build on its "
        "cmrc2018/cmrc2018_trial.json. Default: ../shared/benchmarks beside the working dir or the package",
    )
    query_prefix: str | None = None
    passage_prefix: str | None = None
    threads: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="encoder threads; default 1 when answering (robust when the CPU is shared), all cores for ingest",
    )
    top_k: int = Field(default=5, ge=1, le=20)
    answer_chars: int = Field(default=200, ge=50, le=2000)
    composer: str = Field(
        default="gated",
        description="answer composer: 'gated' (default: extractive answers, refused when a question asks for a "
        "fact no sentence states, or asks anything else and no sentence comes near answering it), "
        "'extractive-v1' (the first release) or 'learned' (docs/answerability.md)",
    )
    answerability_dir: Path | None = Field(
        default=None,
        description="the answerability model folder that `gated` and `learned` load and `speechqa train` writes; "
        "default: the one shipped in the package (qa/models/answerability), which an installed package or an "
        "image may not let you write: set this to recalibrate for another SPEECHQA_MODEL",
    )
    min_evidence: float | None = Field(
        default=None, description="refusal threshold override; None uses the one calibrated with the composer"
    )
    # NoDecode: pydantic-settings would otherwise insist on JSON for a list read from the environment.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="extra allowed origins (comma-separated or JSON); same origin always works",
    )

    # -- access control (README "Production settings") ------------------------------------------------
    api_keys: SecretStr | None = Field(
        default=None,
        description="question-endpoint keys, comma-separated `name:key` or bare `key`; any key set => /v1/* needs one",
    )
    api_keys_file: Path | None = Field(
        default=None, description="a file with one `name key` per line (# comments)"
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="key for /v1/admin/*; unset => those routes answer 404. Never a question key",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="bearer token for /metrics; unset => open"
    )

    # -- limits -----------------------------------------------------------------------------------------
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="413 above this")
    body_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="a request body must arrive within this; 408 otherwise"
    )
    rate_limit: str | None = Field(
        default=None,
        description="per key (or client IP without keys), e.g. '60/minute' or '10/second;300/hour'; unset => none",
    )
    max_concurrent: int | None = Field(
        default=None, ge=1, le=256, description="ask/search running at once per process; default: CPU cores"
    )
    queue_wait_s: float = Field(default=2.0, ge=0, le=60, description="wait for a slot, then 503 overloaded")
    keep_alive_s: int = Field(
        default=5, ge=1, le=300, description="idle keep-alive connections close after this"
    )
    balance_file: Path | None = Field(
        default=None,
        description="set by `serve --workers N`: the file its workers share to even out connections (api.balance)",
    )

    # -- knowledge base over HTTP (README "Admin API") ----------------------------------------------
    upload_max_file_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="largest uploaded document; larger => 413"
    )
    upload_max_request_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1024, description="largest upload request (all files); larger => 413"
    )
    upload_max_files: int = Field(default=50, ge=1, le=1000, description="files in one upload request")
    reload_interval_s: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="how often the server stats the index manifest to pick up a new version; 0 = never",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # Allow a plain comma-separated env value as well as JSON.
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split(",")
        if isinstance(value, list):
            return [str(v).strip().rstrip("/") for v in value if str(v).strip()]
        return value

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir if self.index_dir is not None else self.home / "index"

    @property
    def cache_path(self) -> Path:
        return self.home / "embed-cache.sqlite"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"
