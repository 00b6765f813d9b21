"""Solutions to the exercises of notebooks/23_api_errors_and_retry.ipynb.

Run: .venv/bin/python notebooks/solutions/23_api_errors_and_retry_solutions.py
Offline, against the in-process sandbox with injected faults. Takes about ten seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from opusclip_lib.api import APIError, OpenAIClient, YouTubeClient
from opusclip_lib.metrics import Recorder
from opusclip_lib.pipelines import map_gather
from opusclip_lib.resilience import (
    Backoff,
    CircuitBreaker,
    CircuitOpenError,
    Fallback,
    MemoryCache,
    Resilience,
    RetryPolicy,
    template_captions,
)
from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, build_app
from opusclip_lib.sandbox.catalogue import Catalogue

T = TypeVar("T")


class RetryBudgetExceeded(Exception):
    """The server asked for a longer wait than we allow, or the time budget is spent."""


async def with_retries(call: Callable[[], Awaitable[T]], *, attempts: int = 4,
                       first_delay: float = 0.1, max_retry_after: float = 5.0,
                       budget: float = 3.0) -> tuple[T, int]:
    """Exercise 1: the notebook's loop, plus a cap on Retry-After, a total time budget and a
    count of the attempts it made."""
    deadline = time.monotonic() + budget
    for attempt in range(1, attempts + 1):
        try:
            return await call(), attempt
        except APIError as error:
            if not error.retryable or attempt == attempts:
                raise
            if error.retry_after_s is not None and error.retry_after_s > max_retry_after:
                raise RetryBudgetExceeded(f"server asks for {error.retry_after_s:g} s") from error
            backoff = first_delay * 2 ** (attempt - 1) * random.uniform(0.75, 1)
            delay = error.retry_after_s or backoff
            if time.monotonic() + delay > deadline:
                raise RetryBudgetExceeded(f"{budget:g} s budget spent") from error
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def exercise_1_better_loop(config: SandboxConfig, yt: YouTubeClient, ids: list[str]) -> None:
    config.inject("youtube.videos.list", "server_error", times=2)
    _, attempts = await with_retries(lambda: yt.videos_page([ids[0]]))
    assert attempts == 3, attempts
    print(f"1. two 500s, then success after {attempts} attempts")
    config.inject("youtube.videos.list", "rate_limit", times=1, retry_after_s=30)
    try:
        await with_retries(lambda: yt.videos_page([ids[0]]))
    except RetryBudgetExceeded as error:
        print(f"   a 429 with Retry-After: 30 -> gave up at once: {error}")
    else:
        raise AssertionError("a Retry-After beyond the budget must give up")


async def exercise_2_retry_storms(config: SandboxConfig, app: Any, ids: list[str]) -> None:
    print("2. 50 calls at once, each request fails with probability 0.5")
    requests = {}
    for label, breaker in (("retries only", None),
                           ("retries + breaker",
                            CircuitBreaker("youtube", failure_threshold=5, cool_down_s=1.0))):
        config.clear_faults()
        config.inject("youtube.videos.list", "server_error", probability=0.5, seed=2)
        recorder = Recorder()
        policy = Resilience("youtube", breaker=breaker, recorder=recorder,
                            retry=RetryPolicy(max_retries=3, backoff=Backoff(0.1, 1.0)))
        async with YouTubeClient(SANDBOX_KEY, transport=httpx.ASGITransport(app),
                                 recorder=recorder, resilience=policy) as yt:
            async def call(video_id: str) -> Any:
                try:
                    return await yt.videos_page([video_id])
                except (APIError, CircuitOpenError) as error:
                    return error
            results = await map_gather(call, (ids * 2)[:50])
        failed = sum(isinstance(r, Exception) for r in results)
        requests[label] = len(recorder.frame("http"))
        print(f"   {label:<18} server received {len(recorder.frame('http')):>3} requests; "
              f"{failed:>2} of 50 calls failed")
    config.clear_faults()
    assert requests["retries only"] > 50, "retries send more than one request per call"
    assert requests["retries + breaker"] < requests["retries only"], "the breaker sheds load"
    # Retries alone send well over one request per call into a service failing half of them. The
    # breaker trips after 5 failures and refuses the rest locally: the service gets a fraction
    # of the traffic, and the callers fail fast instead of after 4 attempts. The cost: calls
    # that retries would have rescued fail too, until the circuit closes again.


async def exercise_3_only_retry_what_can_succeed(config: SandboxConfig, app: Any,
                                                  ids: list[str]) -> None:
    print("3. attempts per fault")
    seen = {}
    for kind in ("malformed", "server_error"):
        config.inject("youtube.videos.list", kind, times=1)
        recorder = Recorder()
        policy = Resilience("youtube", recorder=recorder,
                            retry=RetryPolicy(max_retries=2, backoff=Backoff(0.05, 0.1)))
        async with YouTubeClient(SANDBOX_KEY, transport=httpx.ASGITransport(app),
                                 resilience=policy) as yt:
            try:
                await yt.videos_page([ids[1]])
                outcome = "ok"
            except APIError as error:
                outcome = type(error).__name__
        seen[kind] = (len(recorder.frame("attempt")), outcome)
        print(f"   {kind:<13} -> {len(recorder.frame('attempt'))} attempt(s), {outcome}")
    assert seen == {"malformed": (1, "MalformedResponseError"), "server_error": (2, "ok")}
    # A malformed 200 usually means the API changed or a model ignored the schema: the same
    # request gets the same answer, so retrying only spends quota. It is worth retrying when
    # the cause is transient (a proxy truncating bodies, a model that sometimes breaks the
    # schema): then retry once or twice, knowingly, for that operation only.


async def captions_for(title: str, transcript: str, ai: OpenAIClient,
                       policy: Resilience) -> tuple[list[str], str]:
    """Exercise 4: live captions, else the last good ones, else templates; and which it was."""
    result = await policy.call(lambda: ai.write_caption(transcript), cache_key=f"caption:{title}",
                               fallback=lambda error: template_captions(title, error))
    if isinstance(result, Fallback):
        value = result.value
        return (value if isinstance(value, list) else [value]), result.source
    return [result], "live"


async def exercise_4_fallback_chain(config: SandboxConfig, app: Any) -> None:
    policy = Resilience("openai", retry=RetryPolicy(max_retries=1, backoff=Backoff(0.05, 0.1)),
                        cache=MemoryCache(ttl_s=0.2, stale_ttl_s=3600))
    async with OpenAIClient(SANDBOX_KEY, transport=httpx.ASGITransport(app)) as ai:
        print("4. fallback chain")
        cases = [("Async Python in Two Minutes", False), ("Async Python in Two Minutes", True),
                 ("A title never captioned", True)]
        sources = []
        for title, outage in cases:
            await asyncio.sleep(0.25)  # the fresh copy of earlier answers expires
            if outage:
                config.inject("openai.chat.completions", "unavailable")
            captions, source = await captions_for(title, f"Transcript of {title}", ai, policy)
            config.clear_faults()
            sources.append(source)
            banner = "" if source == "live" else "  [needs review]"
            print(f"   {title!r:<32} {source:<12} {captions[0][:40]!r}{banner}")
        assert sources == ["live", "stale-cache", "template"], sources


async def main() -> None:
    config = SandboxConfig.unlimited()
    config.set_latency("youtube.videos.list", 10)
    app = build_app(config)
    ids = [video.id for video in Catalogue.load(config.catalogue_path).videos]
    async with YouTubeClient(SANDBOX_KEY, transport=httpx.ASGITransport(app)) as yt:
        await exercise_1_better_loop(config, yt, ids)
    await exercise_2_retry_storms(config, app, ids)
    await exercise_3_only_retry_what_can_succeed(config, app, ids)
    await exercise_4_fallback_chain(config, app)


if __name__ == "__main__":
    asyncio.run(main())
