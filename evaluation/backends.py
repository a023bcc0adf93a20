"""Where answers come from: the AnswerService in-process, a running server over HTTP, or a benchmark's own index."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError
from tqdm import tqdm

from api.schemas import AnswerOut, PassageDetailOut
from api.settings import Settings
from data.errors import NotFoundError, SpeechQAError
from data.records import Speech
from embeddings.cache import EmbeddingCache
from embeddings.encoder import Encoder
from qa.index import build_index
from qa.service import AnswerService
from qa.types import Answer, Citation, Hit

log = logging.getLogger(__name__)

_Wire = TypeVar("_Wire", AnswerOut, PassageDetailOut)


class Backend(Protocol):
    """What the evaluator needs from the answering side (the same service the API serves)."""

    @property
    def source(self) -> str: ...

    @property
    def index_version(self) -> str: ...

    def ask(self, question: str, top_k: int) -> Answer: ...

    def passage(self, passage_id: str) -> Mapping[str, Any] | None:
        """The passage record, or None if the id does not resolve."""
        ...


class ServiceBackend:
    """Asks an in-process AnswerService (anything with ``ask``, ``passage`` and ``index_version``)."""

    def __init__(self, service: Any, source: str = "in-process") -> None:
        self._service = service
        self._source = source

    @property
    def source(self) -> str:
        return self._source

    @property
    def index_version(self) -> str:
        return str(getattr(self._service, "index_version", ""))

    def ask(self, question: str, top_k: int) -> Answer:
        return self._service.ask(question, top_k=top_k)

    def passage(self, passage_id: str) -> Mapping[str, Any] | None:
        try:
            return self._service.passage(passage_id)
        except NotFoundError:
            return None


def answer_from_wire(question: str, body: AnswerOut) -> Answer:
    """The /v1/ask response (validated by the API's own model) as the Answer record the service returns."""
    return Answer(
        question=question,
        answer=body.answer,
        answerable=body.answerable,
        citations=tuple(Citation(**c.model_dump()) for c in body.citations),
        related=tuple(Hit(**h.model_dump()) for h in body.related),
        timing_ms=body.timing_ms.model_dump(),
        index_version=body.index_version,
    )


class HttpBackend:
    """Asks a running speechqa server: POST /v1/ask, GET /v1/passages/{id}; bodies parsed with ``api.schemas``."""

    def __init__(self, client: httpx.Client, base_url: str, index_version: str = "") -> None:
        self._client = client
        self._base_url = base_url
        self._index_version = index_version

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        timeout: float = 60.0,
        health_timeout: float = 3.0,
        transport: httpx.BaseTransport | None = None,
    ) -> HttpBackend:
        """Check /healthz first, with a short timeout, so a wrong URL fails at once and says so."""
        base_url = base_url.rstrip("/")
        client = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        try:
            response = client.get("/healthz", timeout=health_timeout)
        except httpx.HTTPError as exc:
            client.close()
            raise SpeechQAError(
                f"cannot reach the speechqa server at {base_url} ({type(exc).__name__}: {exc})",
                fix="start it with `speechqa serve` or check --url (scheme, host and port).",
            ) from exc
        if response.status_code != 200:
            client.close()
            raise SpeechQAError(
                f"{base_url}/healthz answered HTTP {response.status_code}, the server is not ready",
                fix="wait until the index is loaded or check the server log.",
            )
        try:
            health = response.json()
        except ValueError:
            health = {}
        version = str(health.get("index_version", "")) if isinstance(health, dict) else ""
        return cls(client, base_url, version)

    @property
    def source(self) -> str:
        return self._base_url

    @property
    def index_version(self) -> str:
        return self._index_version

    def ask(self, question: str, top_k: int) -> Answer:
        response = self._client.post("/v1/ask", json={"question": question, "top_k": top_k})
        if response.status_code != 200:
            raise SpeechQAError(f"HTTP {response.status_code}: {_error_detail(response)}")
        answer = answer_from_wire(question, _parse(AnswerOut, response))
        if answer.index_version and not self._index_version:
            self._index_version = answer.index_version
        return answer

    def passage(self, passage_id: str) -> Mapping[str, Any] | None:
        response = self._client.get(f"/v1/passages/{quote(passage_id, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise SpeechQAError(f"HTTP {response.status_code}: {_error_detail(response)}")
        return _parse(PassageDetailOut, response).model_dump()

    def close(self) -> None:
        self._client.close()


def _parse(model: type[_Wire], response: httpx.Response) -> _Wire:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise SpeechQAError(
            f"{response.request.url} answered a body that is not a valid {model.__name__}: {exc.error_count()} "
            f"problem(s), first: {exc.errors()[0]['msg']} at {exc.errors()[0]['loc']}",
            fix="evaluate a server of the same speechqa version as this client.",
        ) from exc


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    # The API's error body is {"detail", "code"}; anything else (a proxy's page) is shown as is.
    return str(body.get("detail", response.text)) if isinstance(body, dict) else response.text[:300]


# ----------------------------------------------------------------------------------------------------
# A benchmark's own corpus: indexed in a temporary directory, answered by the same AnswerService


def index_speeches(
    speeches: Iterable[Speech],
    encoder: Encoder,
    index_dir: Path,
    *,
    cache: EmbeddingCache | None = None,
    progress: str | None = None,
) -> None:
    """Index ``speeches`` in ``index_dir`` through the embedding cache; ``progress`` names a bar on stderr."""
    bar = _EncodingProgress(progress) if progress else None
    try:
        build_index(list(speeches), encoder, index_dir, cache=cache, progress=bar)
    finally:
        if bar is not None:
            bar.close()


@contextlib.contextmanager
def indexed_speeches(
    speeches: Iterable[Speech], encoder: Encoder, *, cache: EmbeddingCache | None = None
) -> Iterator[Path]:
    """``speeches`` indexed (``index_speeches``) in a temporary directory, removed when the block ends; for a
    benchmark that opens several services (composers, settings) on one index."""
    with temporary_index_dir() as tmp:
        index_dir = Path(tmp) / "index"
        index_speeches(speeches, encoder, index_dir, cache=cache)
        yield index_dir


def open_benchmark_service(
    speeches: Iterable[Speech],
    encoder: Encoder,
    index_dir: Path,
    *,
    cache: EmbeddingCache | None = None,
    progress: str | None = None,
    **service_options: Any,
) -> AnswerService:
    """Index the benchmark's passages in ``index_dir`` and open the service on it."""
    index_speeches(speeches, encoder, index_dir, cache=cache, progress=progress)
    return AnswerService.open(index_dir, encoder, **service_options)


class _EncodingProgress:
    """build_index's progress callback as a tqdm bar on stderr."""

    def __init__(self, desc: str) -> None:
        self._desc = desc
        self._bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = tqdm(total=total, desc=self._desc, unit="para", leave=False)
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def with_composer(settings: Settings, composer: str | None) -> Settings:
    """``settings`` with the answer composer ``composer``, which ``api.assemble.service_options`` hands to the
    service as ``composer=``. A build whose settings have no composer choice runs its one composer, and says so."""
    if composer is None:
        return settings
    if "composer" not in type(settings).model_fields:
        log.warning("this build has no composer registry; composer %r is ignored", composer)
        return settings
    return settings.model_copy(update={"composer": composer})


def temporary_index_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="speechqa-bench-")
