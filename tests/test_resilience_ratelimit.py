"""Limiters: Stability's rate window, ElevenLabs' concurrency, YouTube's quota, OpenAI's headers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from opusclip_lib.errors import TransientError
from opusclip_lib.resilience import (
    AdaptiveLimiter,
    ConcurrencyLimiter,
    QuotaBudget,
    QuotaExhaustedError,
    RateLimiter,
    Resilience,
    defaults_for,
    parse_go_duration,
)
from opusclip_lib.resilience.fakes import FakeClock
from opusclip_lib.resilience.quota import next_pacific_midnight


def busiest_window(times: list[float], window: float) -> int:
    """The most timestamps found in any half-open interval ``[t, t + window)``."""
    times = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - window + 1e-6:  # 1 us of slack for float rounding
            left += 1
        best = max(best, right - left + 1)
    return best


@pytest.mark.looptime
async def test_rate_limiter_never_exceeds_its_window() -> None:
    """Stability's 150 per 10 s, sped up to 15 per 0.25 s: no window ever holds more than 15.

    On looptime's fake loop clock the limiter's waits are all that passes."""
    loop = asyncio.get_running_loop()
    policy = Resilience("stability", limiter=RateLimiter(15, 0.25))
    sent: list[float] = []

    async def request() -> None:
        sent.append(loop.time())

    started = loop.time()
    await asyncio.gather(*(policy.call(request) for _ in range(45)))
    assert busiest_window(sent, 0.25) <= 15
    # ...while still using the whole budget: 45 requests evenly spaced at 60/s, the last at 44/60 s.
    assert loop.time() - started == pytest.approx(44 / 60, abs=0.01)


async def test_elevenlabs_concurrency_is_never_exceeded() -> None:
    policy = defaults_for("elevenlabs", plan="starter")
    in_flight = peak = 0

    async def speak() -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return "audio"

    results = await asyncio.gather(*(policy.call(speak) for _ in range(20)))
    assert results == ["audio"] * 20
    assert peak == 3 == policy.concurrency.peak
    assert policy.concurrency.in_flight == 0


def test_concurrency_for_plan_uses_published_limits() -> None:
    plans = ("Free", "starter", "creator", "pro", "scale", "business")
    assert [ConcurrencyLimiter.for_plan(p).limit for p in plans] == [2, 3, 5, 10, 15, 15]


async def test_quota_budget_refuses_locally_with_a_clear_error() -> None:
    clock = FakeClock()
    origin = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)  # noon in Los Angeles
    budget = QuotaBudget(250, clock=lambda: clock.wall(origin))
    policy = Resilience("youtube", limiter=budget)
    calls = 0

    async def search() -> list[str]:
        nonlocal calls
        calls += 1
        return ["video"]

    assert await policy.call(search, cost=100) == ["video"]
    assert await policy.call(search, cost=100) == ["video"]
    with pytest.raises(QuotaExhaustedError) as refused:
        await policy.call(search, cost=100)
    error = refused.value
    assert calls == 2  # the third request never went out
    assert (error.provider, error.needed, error.remaining) == ("youtube", 100, 50)
    assert not isinstance(error, TransientError)
    assert error.resets_at == datetime(2026, 1, 16, 8, 0, tzinfo=UTC)  # midnight PST
    assert error.retry_after_s == 12 * 3600
    assert "quota exhausted" in str(error)
    assert "resets at" in str(error)
    assert policy.stats.attempts == 3  # refused once, not retried

    clock.advance(12 * 3600)  # midnight Pacific: a fresh day
    assert await policy.call(search, cost=100) == ["video"]
    assert budget.remaining == 150


@pytest.mark.parametrize(("utc", "midnight_utc"), [
    (datetime(2026, 3, 8, 7, 30, tzinfo=UTC), datetime(2026, 3, 8, 8, 0, tzinfo=UTC)),   # PST
    (datetime(2026, 3, 8, 12, 0, tzinfo=UTC), datetime(2026, 3, 9, 7, 0, tzinfo=UTC)),   # PDT
])
def test_quota_resets_at_midnight_pacific_across_dst(utc: datetime, midnight_utc: datetime) -> None:
    assert next_pacific_midnight(utc) == midnight_utc


@pytest.mark.parametrize(("text", "seconds"), [
    ("12ms", 0.012), ("1s", 1.0), ("6m0s", 360.0), ("1m30.5s", 90.5), ("1h2m3s", 3723.0),
    ("0s", 0.0), ("", None), ("abc", None), ("5 s", None), ("1s2", None),
])
def test_parse_go_duration(text: str, seconds: float | None) -> None:
    assert parse_go_duration(text) == (None if seconds is None else pytest.approx(seconds))


async def test_adaptive_limiter_waits_for_reset_after_remaining_hits_zero() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(clock=clock, sleep=clock.sleep)
    policy = Resilience("openai", limiter=limiter)
    policy.observe({"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "1.5s",
                    "x-ratelimit-remaining-tokens": "90000", "x-ratelimit-reset-tokens": "6m0s"})

    async def complete() -> str:
        return "ok"

    await policy.call(complete)
    await policy.call(complete)
    assert clock.sleeps == []  # two left: both went straight out
    await policy.call(complete)
    assert clock.sleeps == [1.5]  # the third waited for the reset

    policy.observe({"x-ratelimit-remaining-requests": "100", "x-ratelimit-reset-requests": "1s",
                    "x-ratelimit-remaining-tokens": "500", "x-ratelimit-reset-tokens": "30s"})
    await policy.call(complete, cost=800)  # more tokens than are left: wait for the token reset
    assert clock.sleeps == [1.5, 30.0]


async def test_adaptive_limiter_is_permissive_until_it_hears_from_the_server() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(100):
        await limiter.acquire(10_000)
    limiter.observe({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "oops"})
    await limiter.acquire()  # a malformed reset is ignored rather than trusted
    assert clock.sleeps == []
