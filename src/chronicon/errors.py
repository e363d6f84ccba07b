"""User-facing errors: one type per cause a user can fix, each with an exit code and HTTP status.

The CLI (`chronicon.cli.common.exit_on_error`) and the web layer translate these in one place
each. Messages name the cause and, where there is one, the fix; they never contain a traceback
or a secret.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_MODEL_UNAVAILABLE = 3


class ChroniconError(Exception):
    """Base of every error Chronicon reports to a user. Internal failure unless a subclass says."""

    exit_code = EXIT_INTERNAL
    http_status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# ---- bad input (exit 2, HTTP 4xx) --------------------------------------------------------------


class BadInput(ChroniconError):
    exit_code = EXIT_BAD_INPUT
    http_status = 422


class BadParameter(BadInput):
    """A parameter outside its documented range or of the wrong kind."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


class BadVideo(BadInput):
    """The file cannot be analysed as a video. Subclasses name the precise cause."""


class VideoNotFound(BadVideo):
    http_status = 404


class UnreadableVideo(BadVideo):
    """Exists but cannot be opened (permissions, a directory, ...)."""


class NotAVideo(BadVideo):
    http_status = 415


class AudioOnly(BadVideo):
    pass


class EmptyVideo(BadVideo):
    """A container with a video stream that holds no decodable frame."""


class CorruptVideo(BadVideo):
    """Truncated or damaged data; the message says how far it could be read."""


class UnsupportedCodec(BadVideo):
    http_status = 415


class FrameTooLarge(BadVideo):
    """A decoded frame would exceed the pixel budget (`CHRONICON_MAX_PIXELS`): refused before
    decoding, so a "decompression bomb" (a tiny file declaring a huge frame) costs nothing."""

    http_status = 413


class UploadTooLarge(BadInput):
    http_status = 413


class RequestTooLarge(BadInput):
    """A JSON or form body over `MAX_BODY_BYTES` (uploads have their own limit)."""

    http_status = 413


class UploadTimeout(BadInput):
    """An upload that stalled or took longer than its deadline (CHRONICON_UPLOAD_*TIMEOUT)."""

    http_status = 408


class Forbidden(BadInput):
    http_status = 403


class CrossSiteRequest(Forbidden):
    """A state-changing request sent by a page on another site (Origin / Sec-Fetch-Site)."""


class HostNotAllowed(BadInput):
    """A Host header naming a host this server does not answer to (DNS rebinding)."""

    http_status = 400


class NotFound(BadInput):
    http_status = 404


class Unauthorized(BadInput):
    http_status = 401


class Conflict(BadInput):
    """The request does not fit the thing's current state (cancelling a job that has started)."""

    http_status = 409


class RulesError(BadInput):
    """A rules file that does not parse or validate; the message names the rule and field."""


# ---- the server cannot store what it was sent (HTTP 500/507) ------------------------------------


class StorageFailure(ChroniconError):
    """Writing to the data directory failed (read-only folder, permissions): not the client's
    fault; the message names the cause."""


class StorageFull(StorageFailure):
    http_status = 507


# ---- the model cannot be had (exit 3, HTTP 503) -----------------------------------------------


class ModelUnavailable(ChroniconError):
    exit_code = EXIT_MODEL_UNAVAILABLE
    http_status = 503


class InsufficientMemory(ModelUnavailable):
    """The model would not fit in free memory at any precision we are allowed to use."""


# ---- the job queue and remote workers ------------------------------------------------------------


class QueueUnavailable(ChroniconError):
    """The configured queue cannot be used: its extra is not installed, the broker cannot be
    reached, or a setting it needs is missing. Exit 2 at start-up, 503 on the web."""

    exit_code = EXIT_BAD_INPUT
    http_status = 503


# ---- delivery (agent channels) ------------------------------------------------------------------


class DeliveryError(ChroniconError):
    """A channel could not deliver; the outbox records it and retries."""

    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable
