"""Who may ask and how much: API keys, the admin key, per-key rate limits and the per-process work cap."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import math
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from limits import parse_many, storage, strategies
from pydantic import SecretStr

from api.settings import Settings
from data.errors import MissingKeyError, OverloadedError, RateLimitedError, WrongKeyError

T = TypeVar("T")


def parse_api_keys(value: str | None, path: Path | None = None) -> dict[str, SecretStr]:
    """Key name -> key from ``name:key,key2`` (bare keys are named ``key1``, ``key2``...) and a file of
    ``name key`` lines. Raises ValueError on a malformed entry or a name used twice."""
    entries: list[tuple[str | None, str]] = []
    for item in (value or "").split(","):
        item = item.strip()
        if item:
            name, sep, key = item.partition(":")
            entries.append((name.strip(), key.strip()) if sep else (None, item))
    if path is not None:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if len(words) == 1:
                entries.append((None, words[0]))
            elif len(words) == 2:
                entries.append((words[0], words[1]))
            elif words:
                raise ValueError(f"{path}:{lineno}: expected `name key`, got {len(words)} words")
    keys: dict[str, SecretStr] = {}
    for i, (given, key) in enumerate(entries, 1):
        name = f"key{i}" if given is None else given
        if not key or not name:
            raise ValueError(f"API key entry {i} has an empty name or key")
        if name in keys:
            raise ValueError(f"API key name {name!r} is used twice")
        keys[name] = SecretStr(key)
    return keys


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    get = headers.get
    auth = get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = (get("x-api-key") or "").strip()
    return key or None


def _equal(a: str, b: SecretStr) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.get_secret_value().encode("utf-8", "replace"))


@dataclass
class KeyChecker:
    """Question keys; compares against every key so the time taken does not tell which one nearly matched."""

    keys: dict[str, SecretStr] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        return bool(self.keys)

    def name_of(self, key: str | None) -> str | None:
        """The key's name; None when keys are off. Raises MissingKeyError / WrongKeyError."""
        if not self.keys:
            return None
        if key is None:
            raise MissingKeyError(
                "this service needs an API key", fix="send `Authorization: Bearer KEY` or `X-API-Key: KEY`"
            )
        found = None
        for name, secret in self.keys.items():
            if _equal(key, secret) and found is None:
                found = name
        if found is None:
            raise WrongKeyError("the API key is not valid", fix="ask the operator for a key")
        return found


def check_secret(key: str | None, secret: SecretStr, what: str) -> None:
    """For single-secret routes (admin, metrics): MissingKeyError without a key, WrongKeyError for another."""
    if key is None:
        raise MissingKeyError(f"this route needs the {what}", fix="send `Authorization: Bearer KEY`")
    if not _equal(key, secret):
        raise WrongKeyError(f"that is not the {what}")


class RateLimiter:
    """Per-bucket moving-window limits (the `limits` package, in memory: each worker process counts alone)."""

    def __init__(self, spec: str | None) -> None:
        self.items = parse_many(spec.replace(",", ";")) if spec else []
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def hit(self, bucket: str) -> None:
        """Count one request for ``bucket``; RateLimitedError (with Retry-After seconds) once it is used up."""
        for item in self.items:
            if not self._limiter.hit(item, bucket):
                reset = self._limiter.get_window_stats(item, bucket).reset_time
                raise RateLimitedError(
                    f"rate limit of {item} reached", retry_after=math.ceil(reset - time.time())
                )


class WorkGate:
    """At most ``slots`` answers or searches at once per process; a request waits up to ``wait_s`` for a slot,
    then gets 503 ``overloaded``, so a burst of questions cannot starve probes, browsing and the widget.

    Waiting parks a coroutine on the event loop, never a thread: with a blocking semaphore, 64 waiting
    clients took every thread of the pool that runs the answers themselves, and the process answered 17/s
    with hundreds of 503s (benchmarks/bench_load.py, 64 clients) instead of its usual ~110/s.
    """

    def __init__(self, slots: int, wait_s: float) -> None:
        self.slots = slots
        self.wait_s = wait_s
        self._sem: asyncio.Semaphore | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    def _semaphore(self) -> asyncio.Semaphore:
        if self._sem is None:  # made on first use, inside the serving event loop
            self._sem = asyncio.Semaphore(self.slots)
        return self._sem

    async def acquire(self) -> None:
        try:
            # asyncio.timeout, not wait_for: wait_for ran the acquire as a task of its own, an extra turn of the
            # event loop for every answer, even with a slot free.
            async with asyncio.timeout(self.wait_s):
                await self._semaphore().acquire()
        except TimeoutError:
            raise OverloadedError(
                f"all {self.slots} answer slots are busy", retry_after=1, fix="retry in a moment"
            ) from None

    def release(self) -> None:
        """Called on the event loop (a dependency's teardown, the end of a stream)."""
        self._semaphore().release()

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on one of the gate's own ``slots`` threads, for a request that holds a slot.

        One thread per slot, so a slot never waits for a thread. Through asyncio's executor hop instead of
        starlette's ``run_in_threadpool`` (anyio), /v1/ask was 0.05-0.22x the floor faster in each of eight
        alternating pairs of ``benchmarks/bench_answers.py --skip-cmrc`` runs (docs/benchmarks.md, "The answers'
        own threads"). The request's context (its request id for the logs) goes with it, as anyio's would.

        Like anyio's, the wait is not cancellable: a request whose client goes away keeps its slot until the
        thread, which cannot be stopped, has finished, so the slots still bound the answers running at once.
        """
        if self._pool is None or self._pool_pid != os.getpid():
            # Made in the serving process; a forked child inherits the object but not its threads.
            self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="speechqa-answer")
            self._pool_pid = os.getpid()
        ctx = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(self._pool, ctx.run, fn)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([future])
            raise


@dataclass
class Guard:
    """Everything the request dependencies need, built once per app from the settings."""

    keys: KeyChecker
    admin_key: SecretStr | None
    metrics_token: SecretStr | None
    rate: RateLimiter
    gate: WorkGate

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        keys = parse_api_keys(
            settings.api_keys.get_secret_value() if settings.api_keys else None, settings.api_keys_file
        )
        admin = settings.admin_key if settings.admin_key and settings.admin_key.get_secret_value() else None
        if admin is not None and any(_equal(admin.get_secret_value(), k) for k in keys.values()):
            raise ValueError("SPEECHQA_ADMIN_KEY must differ from every question API key")
        return cls(
            keys=KeyChecker(keys),
            admin_key=admin,
            metrics_token=settings.metrics_token if settings.metrics_token else None,
            rate=RateLimiter(settings.rate_limit),
            gate=WorkGate(settings.max_concurrent or os.cpu_count() or 1, settings.queue_wait_s),
        )
