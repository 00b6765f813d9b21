"""What every client shares: timeouts, dropped connections, cancellation, one event loop,
metrics, and the resilience layer plugged in for real.

Timeouts and cancellation run over real HTTP (the sandbox on loopback, in its own thread and
loop) with both transports, so what is checked is what the pool really does.
"""

from __future__ import annotations

import asyncio
import socket
import traceback
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from opusclip_lib.api import (
    APIConnectionError,
    APITimeoutError,
    ClientStateError,
    OpenAIClient,
    YouTubeClient,
)
from opusclip_lib.api._urls import URLBuilder, segment
from opusclip_lib.api.models import ChatCompletion
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import (
    Fallback,
    MemoryCache,
    QuotaBudget,
    QuotaExhaustedError,
    Resilience,
    RetryPolicy,
    defaults_for,
)
from opusclip_lib.sandbox import SandboxConfig, SandboxURLs, build_app, serve
from tests.waiting import until

KEY = "AIzaSyTESTKEY000000000000000000000000"
VIDEO = "dQw4w9WgXcQ"
TRANSPORTS = ["aiohttp", "httpx-aiohttp", "httpx"]


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxURLs]:
    async with serve(SandboxConfig()) as urls:
        yield urls


def loopback_client(urls: SandboxURLs, transport: Any, **options: Any) -> YouTubeClient:
    return YouTubeClient(KEY, base_url=urls.youtube, transport=transport, **options)


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_slow_answer_raises_the_typed_timeout(sandbox: SandboxURLs, transport: str) -> None:
    # A hang that ends when the client hangs up, so the server has nothing left to finish.
    sandbox.sandbox.config.inject("youtube.videos.list", "timeout", hang_s=5)
    recorder = Recorder()
    async with loopback_client(sandbox, transport, timeout=0.2, recorder=recorder) as yt:
        with pytest.raises(APITimeoutError) as caught:
            await yt.videos_page([VIDEO])
    error = caught.value
    assert error.retryable
    assert error.provider == "youtube"
    assert error.status_code is None
    assert "127.0.0.1" in str(error)
    assert KEY not in "".join(traceback.format_exception(error))  # the causes included
    [event] = recorder.events("http")
    assert (event.ok, event.error, event.labels["status"]) == (False, "APITimeoutError", None)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_refused_connection_raises_connection_error(transport: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the client connects
    async with YouTubeClient(KEY, base_url=f"http://127.0.0.1:{port}/youtube/v3",
                             transport=transport) as yt:  # type: ignore[arg-type]
        with pytest.raises(APIConnectionError) as caught:
            await yt.videos_page([VIDEO])
    assert caught.value.retryable
    assert KEY not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_cancelling_mid_request_leaks_no_connection_or_task(sandbox: SandboxURLs,
                                                                  transport: str) -> None:
    hang = sandbox.sandbox.config.inject("youtube.videos.list", "timeout", hang_s=10, times=1)
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    recorder = Recorder()
    async with loopback_client(sandbox, transport, limits=one_connection, recorder=recorder,
                               timeout=httpx.Timeout(5.0, pool=1.0)) as yt:
        stuck = asyncio.create_task(yt.videos_page([VIDEO]))
        await until(lambda: hang.times == 0, poll_s=0.01)  # the server is "working" on it
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        assert other_tasks() == set()
        # With one connection, a leaked one would leave the next call waiting for the pool.
        page = await yt.videos_page([VIDEO])
        assert page.kind == "youtube#videoListResponse"  # type: ignore[union-attr]
    assert other_tasks() == set()
    assert [e.error for e in recorder.events("http")] == ["CancelledError", None]
    assert yt.usage.failures == 0  # a cancellation is not the service's failure


async def test_the_aiohttp_session_is_closed_with_the_client(sandbox: SandboxURLs) -> None:
    async with loopback_client(sandbox, "aiohttp") as yt:
        await yt.videos_page([VIDEO])
        session = yt._sender.session  # type: ignore[union-attr]
        assert not session.closed
    assert session.closed


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def video_list(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"kind": "youtube#videoListResponse", "etag": "e",
                                     "items": []})


async def test_use_from_another_event_loop_raises_clearly() -> None:
    async with YouTubeClient(KEY, transport=mock(video_list)) as yt:
        def in_another_loop() -> object:
            return asyncio.run(yt.videos_page([VIDEO]))

        with pytest.raises(ClientStateError, match="another event loop"):
            await asyncio.to_thread(in_another_loop)
        assert await yt.videos_page([VIDEO])  # still fine in its own loop


async def test_use_outside_async_with_raises_clearly() -> None:
    yt = YouTubeClient(KEY, transport=mock(video_list))
    with pytest.raises(ClientStateError, match="async with"):
        await yt.videos_page([VIDEO])
    async with yt:
        with pytest.raises(ClientStateError, match="already open"):
            await yt.__aenter__()
    with pytest.raises(ClientStateError, match="not open"):
        await yt.videos_page([VIDEO])


async def test_each_call_is_one_metric_event() -> None:
    recorder = Recorder()
    async with YouTubeClient(KEY, transport=mock(video_list), recorder=recorder) as yt:
        await yt.videos_page([VIDEO])
    frame = recorder.frame("http")
    row = frame.iloc[0]
    assert (row["name"], row["provider"], row["status"], row["cost"], row["cost_unit"]) == (
        "youtube.videos.list", "youtube", 200, 1, "quota")
    assert row["bytes"] > 0
    assert not row["cached"]
    assert row["ok"]


# --- the resilience layer, for real -----------------------------------------------------------


def completion_body() -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class Flaky:
    """Answers with the given statuses in turn (then 200), with OpenAI's rate-limit headers."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"x-request-id": f"req_{self.calls}", "retry-after-ms": "250",
                   "x-ratelimit-remaining-requests": "41", "x-ratelimit-reset-requests": "6m0s",
                   "x-ratelimit-remaining-tokens": "9000", "x-ratelimit-reset-tokens": "1s"}
        if status != 200:
            return httpx.Response(status, headers=headers, json={"error": {
                "message": "busy", "type": "server_error", "param": None, "code": None}})
        return httpx.Response(200, headers=headers, json=completion_body())


async def test_resilience_retries_observes_headers_and_caches() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    flaky = Flaky(503, 429)
    policy = defaults_for("openai", sleep=sleep)
    recorder = Recorder()
    messages = [{"role": "user", "content": "hello"}]
    async with OpenAIClient("sk-test", transport=mock(flaky), resilience=policy,
                            recorder=recorder) as ai:
        answer = await ai.chat(messages)
        again = await ai.chat(messages)
    assert isinstance(answer, ChatCompletion)
    assert again is answer  # the second one is a cache hit
    assert flaky.calls == 3
    assert slept == [0.25, 0.25]  # retry-after-ms honoured
    assert [e.labels["status"] for e in recorder.events("http")] == [503, 429, 200]
    assert policy.limiter.requests.remaining == 41 - 0  # type: ignore[union-attr]
    assert (policy.stats.hits, policy.stats.misses) == (1, 1)


async def test_resilience_falls_back_to_the_last_good_answer() -> None:
    now = [0.0]
    flaky = Flaky()
    no_wait = RetryPolicy(max_retries=1, sleep=lambda seconds: asyncio.sleep(0))
    policy = Resilience("openai", retry=no_wait,
                        cache=MemoryCache(ttl_s=10, stale_ttl_s=1000, timer=lambda: now[0]))
    messages = [{"role": "user", "content": "hello"}]
    async with OpenAIClient("sk-test", transport=mock(flaky), resilience=policy) as ai:
        live = await ai.chat(messages)
        now[0] = 60.0  # fresh copy expired, last-good copy kept
        flaky.statuses = [500, 500]
        stale = await ai.chat(messages)
    assert isinstance(stale, Fallback)
    assert stale.value == live
    assert stale.source == "stale-cache"


async def test_youtube_quota_budget_refuses_before_sending() -> None:
    calls = []

    def search(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"kind": "youtube#searchListResponse", "etag": "s",
                                         "items": []})

    policy = Resilience("youtube", limiter=QuotaBudget(150))
    async with YouTubeClient(KEY, transport=mock(search), resilience=policy) as yt:
        await yt.search("asyncio")
        with pytest.raises(QuotaExhaustedError):
            await yt.search("python")
    assert len(calls) == 1
    assert yt.quota_used == 100


@pytest.mark.parametrize(("base", "path", "query"), [
    ("https://www.googleapis.com/youtube/v3", "/videos",
     {"part": "snippet,statistics", "id": "a_b-c,d", "key": "AIza/+="}),
    ("https://api.stability.ai", "/v2beta/stable-image/generate/core", {}),
    ("https://api.stability.ai/", "/v1/x", {"q": "ünïcode & spaces"}),
    ("http://127.0.0.1:8000/elevenlabs", f"/v1/text-to-speech/{segment('a b/c?d')}",
     {"output_format": "mp3_44100_128"}),
])
def test_built_urls_equal_httpx_parsing_them(base: str, path: str, query: dict[str, str]) -> None:
    """The URL builder skips httpx's parser; it must produce exactly what that parser would."""
    built = URLBuilder(base)(path, query)
    text = f"{base.rstrip('/')}{path}" + (f"?{urlencode(query)}" if query else "")
    parsed = httpx.URL(text)
    assert str(built) == str(parsed)
    assert httpx.URL(str(built)) == parsed
    assert (built.host, built.path, built.raw_query_string) == (
        parsed.host, parsed.path, parsed.query.decode())


async def test_the_timeout_holds_over_the_in_process_sandbox_transport() -> None:
    # httpx.ASGITransport enforces no timeout: a 10 s answer would take 10 s without the
    # client's own deadline (the sum of the phase limits, 4 x 0.25 s here).
    config = SandboxConfig()
    config.set_latency("youtube", 10_000)
    async with YouTubeClient(KEY, transport=httpx.ASGITransport(build_app(config)),
                             timeout=0.25) as yt, asyncio.timeout(5):  # guard: a hang fails
        with pytest.raises(APITimeoutError) as caught:
            await yt.videos_page([VIDEO])
    assert caught.value.retryable
    assert "1 s" in str(caught.value)
    assert KEY not in "".join(traceback.format_exception(caught.value))
    assert other_tasks() == set()
