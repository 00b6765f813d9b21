"""One exception hierarchy for the four APIs, and the one function that maps error bodies onto it.

Every error carries what a person debugging needs: ``provider``, ``status_code``, ``code``
(the provider's own reason, e.g. ``quotaExceeded``), ``request_id`` and ``retry_after_s``.
Whether a retry may help is the class: the transient ones (``*``) also inherit
:class:`~opusclip_lib.errors.TransientError`. Messages never hold an API key: the client passes
``redact`` so even a server that echoes the key cannot leak it through an error. A missing key
is the library-wide :class:`~opusclip_lib.errors.ConfigurationError` (re-exported by the
package). The whole library's tree is drawn in :mod:`opusclip_lib.errors`.

::

    APIError
    ├── ClientStateError            client not opened, already closed, or used from another loop
    ├── InvalidRequestError         400, 413, 422, and ids rejected locally before any call
    │   └── InvalidVideoIdError
    ├── AuthenticationError         401, YouTube API_KEY_INVALID
    ├── PermissionDeniedError       other 403s
    ├── QuotaExceededError          quota or credits spent: not transient, waiting will not help
    ├── ContentFilteredError        moderation refused the request or the model refused to answer
    ├── NotFoundError               404 (e.g. ElevenLabs voice_not_found)
    ├── RateLimitError *            429 and Google's 403 rateLimitExceeded; retry_after_s
    ├── ServerError *               >= 500
    ├── RetryableStatusError *      408 and 409, which the SDKs retry
    ├── APIConnectionError *        the request never got an answer
    │   ├── APITimeoutError *
    │   │   ├── StreamTimeoutError *      a stream stalled longer than its chunk timeout
    │   │   └── GenerationPendingError *  a polled job passed its deadline; keeps generation_id
    │   └── StreamInterruptedError *  a stream ended early; says how much arrived
    ├── PartialStreamError          mixin of the stream errors: how much arrived
    ├── WebSocketClosedError        the server closed a WebSocket with an error code
    │   └── WebSocketUnavailableError *  1011 (server error) or 1013 (try again later)
    └── MalformedResponseError      a 2xx body that breaks the documented or requested schema
        └── StreamProtocolError     a malformed server-sent event line
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Required, TypedDict

import httpx

from opusclip_lib.api._headers import request_id_of, retry_after_of
from opusclip_lib.errors import OpusClipError, TransientError

#: Statuses the SDKs retry that have no more specific class (429 is a RateLimitError).
RETRYABLE_STATUSES = frozenset({408, 409})

QUOTA_CODES = frozenset({"quotaExceeded", "dailyLimitExceeded", "insufficient_quota",
                         "quota_exceeded", "payment_required"})
RATE_LIMIT_CODES = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "rate_limit_exceeded",
                              "too_many_concurrent_requests", "system_busy"})
AUTH_CODES = frozenset({"API_KEY_INVALID", "keyInvalid", "invalid_api_key", "unauthorized"})
CONTENT_CODES = frozenset({"content_moderation", "content_filter", "content_policy_violation"})
NOT_FOUND_CODES = frozenset({"voice_not_found", "notFound", "videoNotFound"})


class APIError(OpusClipError):
    """Base of every error the API clients raise; ``except APIError`` catches them all."""

    def __init__(self, message: str, *, provider: str, status_code: int | None = None,
                 code: str | None = None, request_id: str | None = None,
                 retry_after_s: float | None = None) -> None:
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        super().__init__(self._describe())

    @property
    def retryable(self) -> bool:
        """For display (tables, logs): decisions use ``isinstance(error, TransientError)``."""
        return isinstance(self, TransientError)

    def _describe(self) -> str:
        head = " ".join(str(part) for part in (self.provider, self.status_code, self.code) if part)
        tail = f" (request_id={self.request_id})" if self.request_id else ""
        return f"{head}: {self.message}{tail}"


class ClientStateError(APIError, RuntimeError):
    """The client is used outside ``async with`` or from an event loop it was not opened in."""


class InvalidRequestError(APIError):
    """The provider (400, 413, 422) or a local check rejected the request; fix it, do not retry."""


class InvalidVideoIdError(InvalidRequestError, ValueError):
    """A YouTube id that cannot exist (not 11 characters of ``[A-Za-z0-9_-]``), caught locally."""


class AuthenticationError(APIError):
    """The key is missing, wrong or revoked."""


class PermissionDeniedError(APIError):
    """The key is valid but may not do this."""


class QuotaExceededError(APIError):
    """The day's quota or the account's credits are spent.

    Not transient even when the status is 429 (OpenAI ``insufficient_quota``): the budget comes back
    at midnight Pacific (YouTube) or when someone pays, so a retry only burns time and attempts.
    """


class ContentFilteredError(APIError):
    """Moderation rejected the request, or the model refused; the same input will fail again."""


class NotFoundError(APIError):
    """The resource (voice, model, video) does not exist."""


class RateLimitError(APIError, TransientError):
    """Too many requests right now; ``retry_after_s`` says how long to wait when the server does."""


class ServerError(APIError, TransientError):
    """The provider failed (5xx); usually transient."""


class RetryableStatusError(APIError, TransientError):
    """408 (the server gave up waiting for the request) or 409 (a conflict with a concurrent
    request): the SDKs retry both."""


class APIConnectionError(APIError, TransientError):
    """No response (refused, dropped, DNS, TLS); transient, though a POST may have arrived."""


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout expired (the limits are on each client class)."""


class ResponseDetails(TypedDict, total=False):
    """Keywords of an error gathered once for several ``raise`` statements (``**details``)."""

    provider: Required[str]
    status_code: int | None
    request_id: str | None


class StreamDetails(ResponseDetails):
    """The same for the stream errors, with how much had arrived."""

    received_bytes: Required[int]
    received_chunks: Required[int]


class PartialStreamError(APIError):
    """Mixin of the errors raised after a stream started: how much of it arrived.

    ``received_bytes``/``received_chunks`` count network reads; readers that decode them add
    ``received_events`` (SSE events, WebSocket messages) and ``partial_text``.
    """

    received_events: int | None = None
    partial_text: str | None = None

    def __init__(self, message: str, *, provider: str, received_bytes: int,
                 received_chunks: int, **details: Any) -> None:
        self.received_bytes = received_bytes
        self.received_chunks = received_chunks
        super().__init__(f"{message} after {received_chunks} chunk(s), {received_bytes} byte(s)",
                         provider=provider, **details)


class StreamInterruptedError(PartialStreamError, APIConnectionError):
    """A streamed body stopped before its end (connection cut, no ``[DONE]``). Not retried by
    the client (retries happen only before the first byte): the caller decides."""


class StreamTimeoutError(PartialStreamError, APITimeoutError):
    """No chunk arrived within the chunk timeout: the stream stalled (the whole call may be
    long; the gap between two chunks may not)."""


class GenerationPendingError(APITimeoutError):
    """A started job was still running at the polling deadline. ``generation_id`` is kept: pass
    it to the client's ``resume`` method to keep waiting without paying for a new job."""

    def __init__(self, message: str, *, provider: str, generation_id: str,
                 **details: Any) -> None:
        self.generation_id = generation_id
        super().__init__(f"{message} (generation_id={generation_id})", provider=provider,
                         **details)


class WebSocketClosedError(APIError):
    """The server closed the WebSocket with an error code (``close_code``, RFC 6455 section
    7.4). Build it with :meth:`for_close_code`, which picks the transient subclass."""

    def __init__(self, message: str, *, provider: str, close_code: int | None,
                 **details: Any) -> None:
        self.close_code = close_code
        super().__init__(message, provider=provider, code=str(close_code), **details)

    @classmethod
    def for_close_code(cls, message: str, *, provider: str,
                       close_code: int | None) -> WebSocketClosedError:
        transient = close_code in TRANSIENT_CLOSE_CODES
        error_class = WebSocketUnavailableError if transient else WebSocketClosedError
        return error_class(message, provider=provider, close_code=close_code)


class WebSocketUnavailableError(WebSocketClosedError, TransientError):
    """Closed with 1011 (server error) or 1013 (try again later)."""


TRANSIENT_CLOSE_CODES = frozenset({1011, 1013})


class MalformedResponseError(APIError):
    """A successful status with a body that does not match the schema we documented or asked for.

    Not transient: the usual cause is a changed API or a model ignoring the schema, and the
    resilience layer should not spend a budget repeating it.
    """


class StreamProtocolError(MalformedResponseError):
    """A streamed body broke its framing: a malformed server-sent event line or payload."""


# --- provider error bodies -------------------------------------------------------------------
# Each parser returns (message, code, request id found in the body).

Parsed = tuple[str | None, str | None, str | None]


def _google(body: Any) -> Parsed:
    """``{"error": {"code", "message", "errors": [{reason, domain}], "status"?, "details"?}}``."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    reasons = [d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)]
    reasons += [e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)]
    code = next((r for r in reasons if r in AUTH_CODES | QUOTA_CODES), None)
    code = code or next((r for r in reasons if r), None) or error.get("status")
    return error.get("message"), code, None


def _openai(body: Any) -> Parsed:
    """``{"error": {"message", "type", "param", "code"}}``; ``code`` is the specific reason."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    message = error.get("message")
    if error.get("param"):
        message = f"{message} (param: {error['param']})"
    return message, error.get("code") or error.get("type"), None


def _stability(body: Any) -> Parsed:
    """``{"id": "<32 hex>", "name": "bad_request", "errors": ["prompt: is required"]}``."""
    if not isinstance(body, dict):
        return None, None, None
    errors = body.get("errors")
    message = "; ".join(map(str, errors)) if isinstance(errors, list) else body.get("message")
    return message, body.get("name"), body.get("id")


def _elevenlabs(body: Any) -> Parsed:
    """``{"detail": {"status", "message"}}``, or FastAPI's 422 ``{"detail": [{type, loc, msg}]}``.
    """
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return detail.get("message"), detail.get("status"), None
    if isinstance(detail, list):
        problems = [f"{'.'.join(map(str, item.get('loc', [])))}: {item.get('msg')}"
                    for item in detail if isinstance(item, dict)]
        return "; ".join(problems), "validation_error", None
    if isinstance(detail, str):
        return detail, None, None
    return None, None, None


BODY_PARSERS: dict[str, Callable[[Any], Parsed]] = {
    "youtube": _google, "openai": _openai, "stability": _stability, "elevenlabs": _elevenlabs,
}


def error_class_for(status: int, code: str | None) -> type[APIError]:
    """The provider's reason decides first (a 403 can be a quota, a rate limit or a bad key)."""
    if code in QUOTA_CODES:
        return QuotaExceededError
    if code in RATE_LIMIT_CODES or status == 429:
        return RateLimitError
    if code in AUTH_CODES or status == 401:
        return AuthenticationError
    if code in CONTENT_CODES:
        return ContentFilteredError
    if code in NOT_FOUND_CODES or status == 404:
        return NotFoundError
    if status == 402:
        return QuotaExceededError
    if status == 403:
        return PermissionDeniedError
    if status in (400, 413, 422):
        return InvalidRequestError
    if status >= 500:
        return ServerError
    if status in RETRYABLE_STATUSES:
        return RetryableStatusError
    return APIError


def _body(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def error_from_response(provider: str, response: httpx.Response, *,
                        redact: Callable[[str], str] = str) -> APIError:
    """The typed error for a response with status >= 400 (the body must already be read)."""
    message, code, body_request_id = BODY_PARSERS[provider](_body(response))
    if not message:
        snippet = response.content[:200].decode("utf-8", "replace").strip()
        message = f"{response.reason_phrase or 'error'}{': ' + snippet if snippet else ''}"
    status = response.status_code
    return error_class_for(status, code)(
        redact(message), provider=provider, status_code=status, code=code,
        request_id=request_id_of(response.headers) or body_request_id,
        retry_after_s=retry_after_of(response.headers))
