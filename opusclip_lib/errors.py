"""The root of every error the library raises, and the marker of the ones worth retrying.

``except OpusClipError`` catches every failure the library itself reports (a bug in the caller's
code, a ``KeyError``, is not one of them). Whether to try again is the class, not an attribute:
``isinstance(error, TransientError)``. A transient error may also say how long to wait, in
``retry_after_s``, when the provider or a local limit said so.

Each family keeps its own module and drawing (:mod:`opusclip_lib.api.errors`,
:mod:`opusclip_lib.db.errors`, ...); this is the whole tree. ``*`` marks the transient classes
(they also inherit :class:`TransientError`)::

    OpusClipError
    ├── TransientError                  marker: the same call may work later
    ├── ConfigurationError              a setting that cannot work (no API key, a bad URL)
    ├── VideoNotFoundError              the video does not exist (YouTube, the simulated pipeline)
    ├── APIError                        opusclip_lib.api: the four API clients
    │   ├── ClientStateError
    │   ├── InvalidRequestError
    │   │   └── InvalidVideoIdError
    │   ├── AuthenticationError
    │   ├── PermissionDeniedError
    │   ├── QuotaExceededError
    │   ├── ContentFilteredError
    │   ├── NotFoundError
    │   ├── RateLimitError *
    │   ├── ServerError *
    │   ├── RetryableStatusError *      408 and 409
    │   ├── APIConnectionError *
    │   │   ├── APITimeoutError *
    │   │   │   ├── StreamTimeoutError *
    │   │   │   └── GenerationPendingError *
    │   │   └── StreamInterruptedError *
    │   ├── PartialStreamError          mixin: how much of a stream arrived
    │   ├── WebSocketClosedError
    │   │   └── WebSocketUnavailableError *   close codes 1011, 1013
    │   └── MalformedResponseError
    │       └── StreamProtocolError
    ├── SSEError                        opusclip_lib.api: bytes that are not an event stream
    ├── DatabaseError                   opusclip_lib.db: all three backends
    │   ├── ValidationError             InvalidYouTubeIdError, InvalidUrlError, ValueTooLongError
    │   ├── IntegrityError              UniqueViolationError, CheckViolationError,
    │   │                               ForeignKeyViolationError, NotNullViolationError
    │   ├── NotFoundError
    │   ├── InvalidTransitionError
    │   │   └── LeaseLostError
    │   ├── ConnectionSharedError
    │   ├── QueryError
    │   └── OperationalError *
    │       ├── ConnectionLostError *
    │       ├── StatementTimeoutError *
    │       ├── PoolTimeoutError *
    │       └── LockTimeoutError *
    │           └── DeadlockError *
    ├── ResilienceError                 opusclip_lib.resilience: refused locally, never retried
    │   ├── CircuitOpenError
    │   └── QuotaExhaustedError
    ├── RedisServiceError               opusclip_lib.redis_client
    │   ├── RedisConfigurationError
    │   │   └── NotAClusterError
    │   ├── RedisUnavailableError *
    │   │   ├── RedisClusterDownError *
    │   │   └── RedisSkippedError *
    │   └── ClusterStartError           local servers for notebooks and tests
    ├── FFmpegError                     opusclip_lib.media
    ├── ClipOutOfRangeError             opusclip_lib.media
    ├── BrokerError                     opusclip_lib.distributed: the message broker
    │   └── BrokerUnavailableError *    names the broker and its URL (no credentials)
    ├── WorkflowError                   opusclip_lib.workflow: why a job failed
    │   ├── NoHighlightsError
    │   ├── MediaUnreadableError
    │   └── SourceError                 SourceNotFoundError, NotMediaError, NoAudioError,
    │                                   SourceTooLongError, SourceTooLargeError,
    │                                   UnsupportedSourceError, DownloadFailedError,
    │                                   TranscriptionRejectedError
    ├── CassetteMissError               tooling: a request with no recording
    └── RecordingFailedError            tooling: a source failed while recording cassettes

The sandbox's own exceptions (``TooBusy``, ``StreamCut``...) stay outside: they are the fake
servers' control flow, turned into HTTP answers before any client sees them.
"""

from __future__ import annotations

__all__ = ["ConfigurationError", "OpusClipError", "TransientError", "VideoNotFoundError"]


class OpusClipError(Exception):
    """Root of every error the library raises itself."""


class TransientError(OpusClipError):
    """Marker: the same call may succeed later, so retries and circuit breakers count it.

    ``retry_after_s`` is how long the provider (or a local limit) asked to wait; ``None`` when
    nobody said, and the retry policy's backoff decides.
    """

    retry_after_s: float | None = None


class ConfigurationError(OpusClipError, ValueError):
    """A setting that cannot work whatever a server does (a missing API key, an unusable
    database URL or option); nothing was sent. Fix it, do not retry."""


class VideoNotFoundError(OpusClipError, LookupError):
    """The video does not exist (deleted, private, or a typo in its id)."""
