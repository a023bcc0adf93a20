"""Request ids in every log line, JSON access log lines, and the Prometheus metrics.

Metrics work with several uvicorn workers: when PROMETHEUS_MULTIPROC_DIR is set (``speechqa serve --workers N``
sets it to a fresh temporary directory before the workers start), each process writes its values there and
``/metrics`` sums them (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from contextvars import ContextVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as _DEFAULT_REGISTRY

REQUEST_ID: ContextVar[str] = ContextVar("speechqa_request_id", default="-")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = logging.getLogger("speechqa.access")


def request_id_from(value: str | None) -> str:
    """The client's X-Request-ID when it is short and plain (no spaces or control characters), else a new one."""
    if value and _SANE_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdFormatter(logging.Formatter):
    """A formatter that may use ``%(request_id)s`` even on records made before the record factory was set."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return super().format(record)


def serve_log_config(level: str = "INFO") -> dict:
    """uvicorn's ``log_config`` for ``speechqa serve``: request id on every line, access lines as bare JSON."""
    line = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": RequestIdFormatter, "fmt": line},
            "access": {"()": RequestIdFormatter, "fmt": "%(message)s"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
        "loggers": {
            **{name: {"level": level} for name in ("api", "qa", "embeddings", "data", "speechqa")},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "speechqa.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


_factory_installed = False


def install_request_id_logging() -> None:
    """Every LogRecord made from now on carries ``request_id`` (a record factory reaches every logger and handler,
    including uvicorn's; a filter on one handler would miss the others). Idempotent."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):  # type: ignore[no-untyped-def]
        record = previous(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def log_access(**fields: object) -> None:
    """One JSON line per request on ``speechqa.access``: method, path, status, ms, request_id, key (its name,
    never the key), client."""
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))


# -- metrics ----------------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "speechqa_http_requests_total",
    "HTTP requests by route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "speechqa_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
QUESTIONS = Counter("speechqa_questions_total", "questions answered or refused", ["outcome"])
ANSWER_STAGE = Histogram(
    "speechqa_answer_stage_seconds",
    "time per answer stage, from the answer's timing_ms (retrieve includes query encoding)",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REJECTED = Counter("speechqa_rejected_total", "requests turned away before any work", ["reason"])
INDEX_INFO = Gauge(
    "speechqa_index_info", "the loaded index version (value 1)", ["version"], multiprocess_mode="max"
)
INDEX_PARAGRAPHS = Gauge(
    "speechqa_index_paragraphs", "paragraphs in the loaded index", multiprocess_mode="max"
)


def observe_answer(answerable: bool, timing_ms: dict[str, float]) -> None:
    QUESTIONS.labels("answered" if answerable else "refused").inc()
    for stage, ms in timing_ms.items():
        ANSWER_STAGE.labels(stage).observe(ms / 1000.0)


def observe_index(version: str, paragraphs: int) -> None:
    INDEX_INFO.labels(version).set(1)
    INDEX_PARAGRAPHS.set(paragraphs)


def metrics_payload() -> tuple[bytes, str]:
    """The exposition text: summed over worker processes in multiprocess mode, this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(_DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
