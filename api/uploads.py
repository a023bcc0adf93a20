"""Multipart uploads streamed straight into files of one directory, size limits enforced as the bytes arrive.

Starlette's ``request.form()`` would spool every file to the system temp dir and only then hand it over;
here each part goes to ``DEST/NNN/NAME`` (NAME sanitised, one folder per file so names never collide and
a document's own name stays its default title), and a request over a limit stops at that byte with a 413.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from data.errors import InvalidUploadError, UploadTooLargeError

FILE_FIELD = "files"
MAX_FIELD_CHARS = 200
_MAX_NAME_CHARS = 120


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int
    max_request_bytes: int
    max_files: int


@dataclass(frozen=True)
class UploadedFile:
    name: str  # the sanitised file name, as reported back in job errors
    path: Path
    size: int


@dataclass
class Upload:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def safe_filename(raw: str) -> str:
    """The last path component of a client's file name, without control characters or a leading dot."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*')
    name = name.strip().lstrip(".").strip()
    if len(name) > _MAX_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        name = stem[: _MAX_NAME_CHARS - len(suffix) - 1] + dot + suffix if dot and len(suffix) <= 10 else name
        name = name[:_MAX_NAME_CHARS]
    return name or "upload"


class _Receiver:
    """python-multipart callbacks: file parts go to disk, text fields to a dict, limits checked per byte."""

    def __init__(self, dest: Path, limits: UploadLimits, allowed_fields: frozenset[str]) -> None:
        self.dest = dest
        self.limits = limits
        self.allowed = allowed_fields
        self.upload = Upload()
        self.pending: list[tuple[IO[bytes], bytes]] = []
        self._headers: dict[bytes, bytes] = {}
        self._name = b""
        self._value = b""
        self._field: str | None = None
        self._data = bytearray()
        self._file: IO[bytes] | None = None
        self._file_name = ""
        self._file_path: Path | None = None
        self._file_size = 0
        self.open_files: list[IO[bytes]] = []

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda d, a, b: setattr(self, "_name", self._name + d[a:b]),
            "on_header_value": lambda d, a, b: setattr(self, "_value", self._value + d[a:b]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._headers, self._field, self._data, self._file = {}, None, bytearray(), None

    def on_header_end(self) -> None:
        self._headers[self._name.strip().lower()] = self._value.strip()
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise InvalidUploadError("a multipart part has no field name")
        self._field = name.decode("utf-8", "replace")
        if b"filename" not in options:
            if self._field not in self.allowed:
                raise InvalidUploadError(
                    f"unknown form field {self._field!r}",
                    fix=f"send files as {FILE_FIELD!r} and metadata as {', '.join(sorted(self.allowed))}",
                )
            return
        if self._field != FILE_FIELD:
            raise InvalidUploadError(f"files go in the form field {FILE_FIELD!r}, not {self._field!r}")
        if len(self.upload.files) >= self.limits.max_files:
            raise UploadTooLargeError(f"at most {self.limits.max_files} files per upload")
        self._file_name = safe_filename(options[b"filename"].decode("utf-8", "replace"))
        folder = self.dest / f"{len(self.upload.files):03d}"
        folder.mkdir(parents=True)
        self._file_path = folder / self._file_name
        self._file = open(self._file_path, "wb")  # noqa: SIM115 - closed in on_part_end or by close_all
        self.open_files.append(self._file)
        self._file_size = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = bytes(data[start:end])
        if self._file is None:
            self._data += chunk
            if len(self._data) > MAX_FIELD_CHARS * 4:
                raise InvalidUploadError(f"the form field {self._field!r} is too long")
            return
        self._file_size += len(chunk)
        if self._file_size > self.limits.max_file_bytes:
            raise UploadTooLargeError(
                f"{self._file_name} is larger than {self.limits.max_file_bytes} bytes",
                fix="split it, or raise SPEECHQA_UPLOAD_MAX_FILE_BYTES",
            )
        self.pending.append((self._file, chunk))

    def on_part_end(self) -> None:
        if self._file is None:
            value = self._data.decode("utf-8", "replace").strip()
            if len(value) > MAX_FIELD_CHARS:
                raise InvalidUploadError(f"the form field {self._field!r} is too long")
            if value:
                self.upload.fields[self._field or ""] = value
            return
        assert self._file_path is not None
        self.pending.append((self._file, b""))  # b"" marks the end: flush closes the file
        self.upload.files.append(UploadedFile(self._file_name, self._file_path, self._file_size))
        self._file = None

    def flush(self) -> None:
        """Write what the callbacks collected (called in a worker thread: disk writes stay off the loop)."""
        for fh, chunk in self.pending:
            if chunk:
                fh.write(chunk)
            else:
                fh.close()
        self.pending.clear()

    def close_all(self) -> None:
        for fh in self.open_files:
            fh.close()


async def receive_upload(
    request: Request, dest: Path, limits: UploadLimits, allowed_fields: frozenset[str]
) -> Upload:
    """Stream a multipart/form-data body into ``dest``. Raises InvalidUploadError / UploadTooLargeError;
    the caller removes ``dest`` on any failure."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidUploadError(
            "an upload must be multipart/form-data", fix=f"send the documents as form field {FILE_FIELD!r}"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_request_bytes:
        raise UploadTooLargeError(
            f"the upload is larger than {limits.max_request_bytes} bytes",
            fix="send fewer files at once, or raise SPEECHQA_UPLOAD_MAX_REQUEST_BYTES",
        )
    dest.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(dest, limits, allowed_fields)
    parser = MultipartParser(params[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limits.max_request_bytes:
                raise UploadTooLargeError(
                    f"the upload is larger than {limits.max_request_bytes} bytes",
                    fix="send fewer files at once, or raise SPEECHQA_UPLOAD_MAX_REQUEST_BYTES",
                )
            try:
                parser.write(chunk)
            except (InvalidUploadError, UploadTooLargeError):
                raise
            except Exception as exc:  # python-multipart's own parse errors
                raise InvalidUploadError(f"the multipart body cannot be parsed ({exc})") from exc
            if receiver.pending:
                await run_in_threadpool(receiver.flush)
        parser.finalize()
        receiver.flush()
    finally:
        receiver.close_all()
    if not receiver.upload.files:
        raise InvalidUploadError(
            "the upload has no files", fix=f"send one or more in the field {FILE_FIELD!r}"
        )
    return receiver.upload
