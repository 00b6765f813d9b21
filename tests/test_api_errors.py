"""Every provider's error body becomes the right typed error, with request id and retry hint,
and no API key ever shows in a repr, a message, a metric or a log line."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from opusclip_lib.api import (
    APIClient,
    APIError,
    AuthenticationError,
    ConfigurationError,
    ContentFilteredError,
    ElevenLabsClient,
    InvalidRequestError,
    NotFoundError,
    OpenAIClient,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RetryableStatusError,
    ServerError,
    StabilityClient,
    YouTubeClient,
)
from opusclip_lib.api._headers import retry_after_of
from opusclip_lib.errors import TransientError
from opusclip_lib.metrics import Recorder

KEYS = {"youtube": "AIzaSyTESTKEY000000000000000000000000", "openai": "sk-test-0123456789abcdef",
        "stability": "sk-stab-0123456789abcdef", "elevenlabs": "el-0123456789abcdef0123"}
CLIENTS: dict[str, type[APIClient]] = {
    "youtube": YouTubeClient, "openai": OpenAIClient, "stability": StabilityClient,
    "elevenlabs": ElevenLabsClient}
CALLS: dict[str, Callable[[Any], Awaitable[object]]] = {
    "youtube": lambda client: client.videos_page(["dQw4w9WgXcQ"]),
    "openai": lambda client: client.chat([{"role": "user", "content": "hi"}]),
    "stability": lambda client: client.generate_core("a fox"),
    "elevenlabs": lambda client: client.voices(),
}


def google_error(code: int, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message,
                      "errors": [{"message": message, "domain": "youtube.quota", "reason": reason}],
                      **extra}}


def openai_error(message: str, kind: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def in_seconds(seconds: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


# provider, status, headers, body -> class, code, request id, retry_after, retryable
CASES = [
    ("youtube", 403, {}, google_error(403, "quotaExceeded", "The request cannot be completed "
                                      "because you have exceeded your quota."),
     QuotaExceededError, "quotaExceeded", None, None, False),
    ("youtube", 400, {}, google_error(400, "badRequest", "API key not valid. Please pass a valid "
                                      "API key.", status="INVALID_ARGUMENT", details=[
                                          {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                           "reason": "API_KEY_INVALID"}]),
     AuthenticationError, "API_KEY_INVALID", None, None, False),
    ("youtube", 403, {"retry-after": "3"}, google_error(403, "rateLimitExceeded", "slow down"),
     RateLimitError, "rateLimitExceeded", None, 3.0, True),
    ("youtube", 403, {}, google_error(403, "forbidden", "not yours"),
     PermissionDeniedError, "forbidden", None, None, False),
    ("youtube", 503, {}, google_error(503, "backendError", "unavailable"),
     ServerError, "backendError", None, None, True),
    ("openai", 429, {"x-request-id": "req_1", "retry-after-ms": "1500", "retry-after": "9"},
     openai_error("Rate limit reached. Please try again in 1.5s.", "requests",
                  "rate_limit_exceeded"),
     RateLimitError, "rate_limit_exceeded", "req_1", 1.5, True),
    ("openai", 429, {"x-request-id": "req_2"},
     openai_error("You exceeded your current quota.", "insufficient_quota", "insufficient_quota"),
     QuotaExceededError, "insufficient_quota", "req_2", None, False),
    ("openai", 401, {"x-request-id": "req_3"},
     openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
     AuthenticationError, "invalid_api_key", "req_3", None, False),
    ("openai", 400, {"x-request-id": "req_4"},
     openai_error("Invalid value for 'temperature'.", "invalid_request_error", None, "temperature"),
     InvalidRequestError, "invalid_request_error", "req_4", None, False),
    ("openai", 500, {"x-request-id": "req_5"},
     openai_error("The server had an error.", "server_error", None),
     ServerError, "server_error", "req_5", None, True),
    ("stability", 400, {}, {"id": "a" * 32, "name": "bad_request",
                            "errors": ["prompt: is required"]},
     InvalidRequestError, "bad_request", "a" * 32, None, False),
    ("stability", 403, {"x-request-id": "b" * 32},
     {"id": "b" * 32, "name": "content_moderation", "errors": ["flagged"]},
     ContentFilteredError, "content_moderation", "b" * 32, None, False),
    ("stability", 402, {}, {"id": "c" * 32, "name": "payment_required",
                            "errors": ["lacks credits"]},
     QuotaExceededError, "payment_required", "c" * 32, None, False),
    ("stability", 429, {"retry-after": "60"}, {"id": "d" * 32, "name": "rate_limit_exceeded",
                                               "errors": ["too many"]},
     RateLimitError, "rate_limit_exceeded", "d" * 32, 60.0, True),
    ("elevenlabs", 401, {"request-id": "el1"},
     {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
     AuthenticationError, "invalid_api_key", "el1", None, False),
    ("elevenlabs", 401, {"request-id": "el2"},
     {"detail": {"status": "quota_exceeded", "message": "This request exceeds your quota."}},
     QuotaExceededError, "quota_exceeded", "el2", None, False),
    ("elevenlabs", 404, {"request-id": "el3"},
     {"detail": {"status": "voice_not_found", "message": "A voice with voice_id x was not found."}},
     NotFoundError, "voice_not_found", "el3", None, False),
    ("elevenlabs", 422, {"request-id": "el4"},
     {"detail": [{"type": "missing", "loc": ["body", "text"], "msg": "Field required",
                  "input": {}}]},
     InvalidRequestError, "validation_error", "el4", None, False),
    ("elevenlabs", 429, {"request-id": "el5", "x-ratelimit-reset": "7"},
     {"detail": {"status": "too_many_concurrent_requests", "message": "Too many requests."}},
     RateLimitError, "too_many_concurrent_requests", "el5", 7.0, True),
    ("elevenlabs", 408, {}, {"detail": "Request timeout"}, RetryableStatusError, None, None, None,
     True),
    ("openai", 409, {}, openai_error("Conflict", "conflict", None), RetryableStatusError,
     "conflict", None, None, True),
]


def client_for(provider: str, handler: Callable[[httpx.Request], httpx.Response],
               **options: Any) -> APIClient:
    return CLIENTS[provider](KEYS[provider], transport=httpx.MockTransport(handler), **options)


@pytest.mark.parametrize(("provider", "status", "headers", "body", "kind", "code", "request_id",
                          "retry_after", "retryable"), CASES)
async def test_error_body_maps_to_typed_error(provider: str, status: int, headers: dict,
                                              body: Any, kind: type[APIError], code: str | None,
                                              request_id: str | None, retry_after: float | None,
                                              retryable: bool) -> None:
    async with client_for(provider, lambda r: httpx.Response(status, json=body,
                                                             headers=headers)) as client:
        with pytest.raises(APIError) as caught:
            await CALLS[provider](client)
    error = caught.value
    assert type(error) is kind
    assert (error.provider, error.status_code, error.code) == (provider, status, code)
    assert error.request_id == request_id
    assert error.retry_after_s == retry_after
    assert error.retryable is retryable
    assert client.usage.failures == 1


async def test_error_messages_carry_the_providers_words() -> None:
    body = {"detail": [{"type": "missing", "loc": ["body", "text"], "msg": "Field required"}]}
    async with client_for("elevenlabs", lambda r: httpx.Response(422, json=body)) as client:
        with pytest.raises(InvalidRequestError, match=r"body\.text: Field required"):
            await client.voices()
    body = openai_error("Invalid value for 'temperature'.", "invalid_request_error", None,
                        "temperature")
    async with client_for("openai", lambda r: httpx.Response(400, json=body)) as client:
        with pytest.raises(InvalidRequestError, match=r"temperature.*\(param: temperature\)"):
            await CALLS["openai"](client)


async def test_a_non_json_error_body_still_maps_by_status() -> None:
    page = b"<html><body>502 Bad Gateway</body></html>"
    headers = {"content-type": "text/html", "retry-after": in_seconds(30)}
    async with client_for("stability", lambda r: httpx.Response(502, content=page,
                                                                headers=headers)) as client:
        with pytest.raises(ServerError, match="Bad Gateway") as caught:
            await client.generate_core("a fox")
    assert caught.value.retry_after_s is not None
    assert 25 < caught.value.retry_after_s <= 30


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
    ({"retry-after": "2.5"}, 2.5),
    ({"retry-after": "Thu, 01 Jan 2026 00:00:20 GMT"}, 20.0),
    ({"retry-after": "Thu, 01 Jan 2026 00:00:00 GMT"}, 0.0),
    ({"retry-after": "whenever"}, None),
    ({"x-ratelimit-reset": "1767225612"}, 12.0),  # a Unix time
    ({"x-ratelimit-reset": "4"}, 4.0),  # a delay
    ({"retry-after": "-3"}, 0.0),
    ({}, None),
])
def test_retry_after_reads_the_headers_in_sdk_order(headers: dict[str, str],
                                                    expected: float | None) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert retry_after_of(headers, clock=lambda: now) == expected


@pytest.mark.parametrize("provider", sorted(CLIENTS))
def test_missing_key_names_the_environment_variable(provider: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    variable = CLIENTS[provider].key_variable
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigurationError, match=variable):
        CLIENTS[provider]()
    monkeypatch.setenv(variable, KEYS[provider])
    assert KEYS[provider] not in repr(CLIENTS[provider]())


@pytest.mark.parametrize("provider", sorted(CLIENTS))
async def test_key_never_in_repr_errors_metrics_or_logs(provider: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Even a server that echoes the key back in its error message cannot leak it."""
    key = KEYS[provider]
    seen: list[httpx.Request] = []

    def echo_key(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"error": {"message": f"bad key {key}", "code": 401},
                                         "detail": {"status": "invalid_api_key",
                                                    "message": f"bad key {key}"},
                                         "name": "unauthorized", "errors": [f"bad key {key}"]})

    recorder = Recorder()
    caplog.set_level(logging.DEBUG)
    async with client_for(provider, echo_key, recorder=recorder) as client:
        assert key not in repr(client)
        assert key not in str(client)
        with pytest.raises(AuthenticationError) as caught:
            await CALLS[provider](client)
    assert key in str(seen[0].url) + str(seen[0].headers.raw)  # it was sent...
    error = caught.value
    for text in (str(error), repr(error), error.message, repr(vars(error)),
                 recorder.frame().to_csv(), caplog.text, repr(client.usage)):
        assert key not in text  # ...and shown nowhere
    assert "**********" in error.message


def test_errors_know_when_retrying_helps() -> None:
    assert isinstance(RateLimitError("x", provider="p", status_code=429), TransientError)
    assert isinstance(ServerError("x", provider="p", status_code=502), TransientError)
    assert not isinstance(QuotaExceededError("x", provider="p", status_code=429), TransientError)
    assert not isinstance(InvalidRequestError("x", provider="p", status_code=400), TransientError)
    assert isinstance(RetryableStatusError("x", provider="p", status_code=408), TransientError)
