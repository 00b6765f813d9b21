"""The composed policy: marked fallbacks, provider defaults, and the cost of a cache hit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import (
    AdaptiveLimiter,
    ConcurrencyLimiter,
    Fallback,
    MemoryCache,
    QuotaBudget,
    QuotaExhaustedError,
    RateLimiter,
    Resilience,
    RetryPolicy,
    defaults_for,
    template_captions,
)
from opusclip_lib.resilience.fakes import FakeAPIError, FakeClock


async def test_stale_value_is_served_and_marked_when_the_live_call_fails() -> None:
    clock, recorder = FakeClock(), Recorder()
    policy = Resilience("youtube", cache=MemoryCache(ttl_s=600, stale_ttl_s=86_400, timer=clock),
                        retry=RetryPolicy(sleep=clock.sleep), recorder=recorder)
    outcomes = [{"views": "12"}, *[FakeAPIError(503)] * 6]

    async def videos() -> dict[str, str]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await policy.call(videos, cache_key="v") == {"views": "12"}
    clock.advance(601)  # past the TTL
    result = await policy.call(videos, cache_key="v")
    assert result == Fallback({"views": "12"}, "FakeTransientAPIError: HTTP 503",
                              source="stale-cache")
    assert policy.stats.fallbacks == 1
    assert recorder.frame("fallback")[["name", "source", "error"]].values.tolist() == [
        ["youtube", "stale-cache", "FakeTransientAPIError"]]
    assert await policy.call(videos, cache_key="v") == result  # fallbacks are never cached


async def test_bugs_in_the_operation_are_not_covered_by_a_fallback() -> None:
    policy = Resilience("openai", cache=MemoryCache(stale_ttl_s=86_400))

    async def buggy() -> str:
        return {}["missing"]

    with pytest.raises(KeyError):
        await policy.call(buggy, cache_key="k", fallback=lambda error: "placeholder")


async def test_template_captions_fallback_says_what_it_is() -> None:
    policy = Resilience("openai", retry=RetryPolicy(max_retries=0))

    async def captions() -> list[str]:
        raise FakeAPIError(500)

    result = await policy.call(
        captions, fallback=lambda error: template_captions("Cats vs. cucumbers", error))
    assert isinstance(result, Fallback)
    assert result.source == "template"
    assert result.reason == "FakeTransientAPIError: HTTP 500"
    assert len(result.value) == 3
    assert all("Cats vs. cucumbers" in c for c in result.value)


async def test_plain_fallback_values_are_wrapped_and_without_fallback_errors_propagate() -> None:
    policy = Resilience("elevenlabs", retry=RetryPolicy(max_retries=0))

    async def speak() -> bytes:
        raise FakeAPIError(503)

    wrapped = await policy.call(speak, fallback=lambda error: b"")
    assert wrapped == Fallback(b"", "FakeTransientAPIError: HTTP 503", source="fallback")
    with pytest.raises(FakeAPIError):
        await policy.call(speak)


async def test_exhausted_quota_falls_back_to_the_last_good_value() -> None:
    clock = FakeClock()
    new_year = datetime(2026, 1, 1, tzinfo=UTC)
    policy = Resilience("youtube", limiter=QuotaBudget(100, clock=lambda: clock.wall(new_year)),
                        cache=MemoryCache(ttl_s=600, stale_ttl_s=86_400, timer=clock))

    async def search() -> list[str]:
        return ["v1", "v2"]

    await policy.call(search, cache_key="q", cost=100)
    clock.advance(601)
    result = await policy.call(search, cache_key="q", cost=100)
    assert isinstance(result, Fallback)
    assert result.value == ["v1", "v2"]
    assert result.reason.startswith("QuotaExhaustedError")


@pytest.mark.parametrize(("provider", "limiter", "concurrency"), [
    ("youtube", QuotaBudget, 10), ("openai", AdaptiveLimiter, 50),
    ("stability", RateLimiter, 60), ("elevenlabs", type(None), 2),
])
def test_defaults_for_each_provider(provider: str, limiter: type, concurrency: int) -> None:
    recorder = Recorder()
    policy = defaults_for(provider, recorder=recorder)
    assert isinstance(policy.limiter, limiter)
    assert isinstance(policy.concurrency, ConcurrencyLimiter)
    assert policy.concurrency.limit == concurrency
    assert policy.retry.max_retries == 2
    assert isinstance(policy.cache, MemoryCache)
    assert policy.cache.ttl_s == 600
    assert policy.breaker is not None
    assert policy.breaker.provider == provider
    assert policy.recorder is recorder


def test_defaults_for_real_limits() -> None:
    stability = defaults_for("stability").limiter
    assert isinstance(stability, RateLimiter)
    assert (stability.max_requests, stability.window_s) == (150, 10.0)
    youtube = defaults_for("youtube").limiter
    assert isinstance(youtube, QuotaBudget)
    assert youtube.units_per_day == 10_000
    assert defaults_for("openai").retry.backoff.maximum_s == 8.0
    assert defaults_for("elevenlabs", plan="pro").concurrency.limit == 10
    with pytest.raises(ValueError, match="unknown provider"):
        defaults_for("vimeo")


async def test_quota_error_from_defaults_is_clear() -> None:
    policy = defaults_for("youtube")
    policy.limiter.used = 10_000  # as if the day's budget were spent

    async def search() -> list[str]:
        raise AssertionError("must not be called")

    with pytest.raises(QuotaExhaustedError, match="youtube: quota exhausted"):
        await policy.call(search, cost=100)


async def test_a_cache_hit_never_calls_through() -> None:
    """What a hit costs against an uncached call is ``opusclip bench api``'s to measure."""
    policy = defaults_for("openai", recorder=Recorder())
    calls = 0

    async def complete() -> dict[str, str]:
        nonlocal calls
        calls += 1
        return {"text": "hello"}

    await policy.call(complete, cache_key="k")
    hits = 100
    for _ in range(hits):
        assert await policy.call(complete, cache_key="k") == {"text": "hello"}
    assert calls == 1
    assert policy.stats.hits == hits
