"""The speechqa exception tree; every layer raises these, the API maps them to HTTP in one table.

SpeechQAError                 base; carries a machine-readable ``code``
├── InputFileError            one input file (or archive entry) could not be used: empty, undecodable,
│                             corrupt, encrypted, scanned, over a limit, a symlink (ingest reports it, goes on)
├── EmbeddingModelError       the embedding model cannot be found, converted or loaded
├── IndexError_               the index directory cannot be used
│   ├── IndexNotFoundError    no index at the path
│   ├── IndexCorruptedError   files missing, truncated or inconsistent
│   └── IndexMismatchError    built with another model or dimension
├── InvalidQuestionError      a question the service refuses to process (empty, too long)
├── UnknownFilterError        a filter names a speaker or speech that does not exist
├── NotFoundError             a passage or speech id that does not exist
├── NotReadyError             the service has no loaded index (yet, or its load failed: ``cause_code``)
├── MissingKeyError           a request without the key a route requires
├── WrongKeyError             a request whose key is not one the route accepts
├── InvalidUploadError        an upload that is not multipart/form-data with files and known fields
├── UploadTooLargeError       an upload above the per-file or per-request size limit
└── BusyError                 too many requests: ``retry_after`` seconds tells when to try again
    ├── RateLimitedError      this key (or client) used up its request budget
    └── OverloadedError       every answer slot of the process stayed busy while the request waited

"No evidence" is not an error: the service answers with a refusal.
"""

from __future__ import annotations


class SpeechQAError(Exception):
    """Base of every error speechqa raises on purpose."""

    code = "speechqa_error"

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message} {fix}" if fix else message)


class InputFileError(SpeechQAError):
    """An input file is empty, binary, undecodable, corrupt, encrypted, without a text layer, over a size
    limit or refused (symlink, unsafe archive path); the message names the file and the reason."""

    code = "input_file"


class EmbeddingModelError(SpeechQAError):
    code = "embedding_model"


class IndexError_(SpeechQAError):  # noqa: N801 - the builtin IndexError means something else
    code = "index_error"


class IndexNotFoundError(IndexError_):
    code = "index_not_found"


class IndexCorruptedError(IndexError_):
    code = "index_corrupted"


class IndexMismatchError(IndexError_):
    code = "index_mismatch"


class InvalidQuestionError(SpeechQAError):
    code = "invalid_question"


class UnknownFilterError(SpeechQAError):
    code = "unknown_filter"


class NotFoundError(SpeechQAError):
    code = "not_found"


class NotReadyError(SpeechQAError):
    """No index is loaded: still loading, or loading failed (``cause_code`` then names that failure)."""

    code = "index_not_loaded"

    def __init__(self, message: str, *, fix: str | None = None, cause_code: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.cause_code = cause_code


class MissingKeyError(SpeechQAError):
    code = "missing_key"


class WrongKeyError(SpeechQAError):
    code = "wrong_key"


class InvalidUploadError(SpeechQAError):
    code = "invalid_upload"


class UploadTooLargeError(SpeechQAError):
    code = "payload_too_large"


class BusyError(SpeechQAError):
    """Try again later; ``retry_after`` (whole seconds, >= 1) goes out as the Retry-After header."""

    code = "busy"

    def __init__(self, message: str, *, retry_after: int, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.retry_after = max(1, int(retry_after))


class RateLimitedError(BusyError):
    code = "rate_limited"


class OverloadedError(BusyError):
    code = "overloaded"
