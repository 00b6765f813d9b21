"""Why a job failed, in the words ``processing_jobs`` keeps: a code, a message, and retry or not.

Codes name the cause, not the exception class: ``video_not_found``, ``no_highlights``,
``media_unreadable``, ``clip_out_of_range`` (the media is shorter than a picked clip),
``openai.malformed_response``, ``stability.rate_limit``... The message starts with the stage, so
``error_message`` alone says where and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opusclip_lib.api import APIError
from opusclip_lib.db import OperationalError
from opusclip_lib.errors import (
    ConfigurationError,
    OpusClipError,
    TransientError,
    VideoNotFoundError,
)
from opusclip_lib.media import ClipOutOfRangeError, FFmpegError
from opusclip_lib.resilience import CircuitOpenError, QuotaExhaustedError

MESSAGE_MAX = 2000
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


class WorkflowError(OpusClipError):
    """A failure the workflow itself detects; ``code`` goes to ``processing_jobs.error_code``.
    None is transient: a subclass that may work later would also inherit ``TransientError``.

    The whole library's tree is drawn in :mod:`opusclip_lib.errors`; a video YouTube does not
    know is the library-wide :class:`~opusclip_lib.errors.VideoNotFoundError`."""

    code = "workflow_error"


class NoHighlightsError(WorkflowError):
    code = "no_highlights"


class MediaUnreadableError(WorkflowError):
    code = "media_unreadable"


class ArtifactKeyError(WorkflowError, ValueError):
    """An artifact key that is not a relative path inside the store."""

    code = "artifact_key"


class ArtifactStoreError(WorkflowError, TransientError):
    """The artifact store refused a put or a get (a full disk, an unmounted share); retried
    after a backoff like any transient fault."""

    code = "artifact_store"


class SourceError(WorkflowError):
    """Bad input: the message names the source (a path or a URL) and ``stage`` the stage that
    found it (the job's ``error_message`` starts with the stage too)."""

    code = "bad_source"

    def __init__(self, source: str, reason: str, *, stage: str) -> None:
        self.source = source
        self.stage = stage
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class SourceNotFoundError(SourceError):
    code = "source_not_found"


class NotMediaError(SourceError):
    """Not a media file at all, or a corrupt or empty one."""

    code = "not_media"


class NoAudioError(SourceError):
    code = "no_audio"


class SourceTooLongError(SourceError):
    code = "source_too_long"


class SourceTooLargeError(SourceError):
    code = "source_too_large"


class UnsupportedSourceError(SourceError):
    """A URL no yt-dlp extractor knows, and not a direct media file either."""

    code = "unsupported_source"


class DownloadFailedError(SourceError):
    """The server answered with an error, or did not answer in time."""

    code = "download_failed"


class TranscriptionRejectedError(SourceError):
    """The transcription endpoint refused the audio (400, 413)."""

    code = "transcription_rejected"


@dataclass(frozen=True, slots=True)
class Failure:
    """``defer_s``: come back after this many seconds without spending the attempt (nothing
    was tried: an open circuit breaker refused the call and said when it half-opens)."""

    code: str
    message: str
    retryable: bool
    defer_s: float | None = None


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name.removesuffix("Error")).lower()


def classify(error: BaseException, stage: str | None) -> Failure:
    """The failure to record for ``error`` raised in ``stage``.

    Retryable: what may work later (a provider's 429/5xx once its own retries are spent, an open
    circuit, a lost database connection). Not: bad input, a schema-breaking answer, bad media.
    An open circuit defers the job until the breaker half-opens instead.
    """
    defer_s = None
    match error:
        case WorkflowError():
            code, retryable = error.code, isinstance(error, TransientError)
        case VideoNotFoundError():
            code, retryable = "video_not_found", False
        case ConfigurationError():
            code, retryable = "configuration", False
        case CircuitOpenError():
            code, retryable = f"{error.provider}.circuit_open", True
            defer_s = error.retry_after_s or 0.0
        case QuotaExhaustedError():
            code, retryable = f"{error.provider}.quota_exhausted", False
        case APIError():
            code = f"{error.provider}.{_snake(type(error).__name__)}"
            retryable = isinstance(error, TransientError)
        case FFmpegError():
            code, retryable = "ffmpeg_failed", False
        case ClipOutOfRangeError():
            code, retryable = "clip_out_of_range", False
        case OperationalError():
            code, retryable = "database_unavailable", True
        case _:
            code, retryable = "internal_error", False
    text = str(error) or type(error).__name__
    if code == "internal_error":
        text = f"{type(error).__name__}: {text}"
    message = f"{stage or 'start'}: {text}"
    return Failure(code, message[:MESSAGE_MAX], retryable, defer_s)
