"""The resilience charts draw what a real (fake-timed) run recorded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import matplotlib
import matplotlib.pyplot as plt
import pytest

from opusclip_lib.charts.resilience import (
    attempt_timeline,
    breaker_states,
    cache_hit_rate,
    requests_per_window,
)
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    MemoryCache,
    RateLimiter,
    Resilience,
    RetryPolicy,
)
from opusclip_lib.resilience.fakes import FakeAPIError

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture
async def recorder() -> Recorder:
    """A short run with hits, misses, retries, a breaker trip and rate limiting."""
    recorder = Recorder()

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    policy = Resilience(
        "stability", limiter=RateLimiter(20, 0.1), cache=MemoryCache(),
        breaker=CircuitBreaker("stability", failure_threshold=3, cool_down_s=0.01,
                               recorder=recorder),
        retry=RetryPolicy(max_retries=1, sleep=no_wait), recorder=recorder)
    # call 0: fails once, then succeeds; call 1: fails twice, which opens the circuit;
    # call 2, after the cool-down, is the half-open trial and closes it; the rest succeed.
    failures = iter([True, False, True, True] + [False] * 100)

    async def generate() -> bytes:
        if next(failures):
            raise FakeAPIError(503)
        return b"png"

    for i in range(30):
        with contextlib.suppress(FakeAPIError, CircuitOpenError):  # failures are part of the run
            await policy.call(generate, cache_key=str(i % 10))
        if i == 1:
            await asyncio.sleep(0.02)  # let the breaker cool down
    return recorder


def test_requests_per_window_shows_the_limit(recorder: Recorder) -> None:
    ax = requests_per_window(recorder.frame("attempt"), limit=20, window_s=0.1,
                             provider="stability")
    counts = ax.lines[0].get_ydata()
    assert 0 < max(counts) <= 20
    assert ax.lines[1].get_ydata()[0] == 20  # the limit line


def test_cache_hit_rate_is_a_percentage(recorder: Recorder) -> None:
    ax = cache_hit_rate(recorder.frame("cache"), over=5)
    rates = ax.lines[0].get_ydata()
    assert rates[0] == 0
    assert 0 < rates[-1] <= 100


def test_attempt_timeline_draws_attempts_and_backoff(recorder: Recorder) -> None:
    attempts = recorder.frame("attempt")
    ax = attempt_timeline(attempts)
    assert len(ax.patches) == len(attempts) == 13  # 11 live calls, two of them retried
    backoff, queued = ax.collections
    assert len(backoff.get_segments()) == 2
    assert len(queued.get_segments()) == 13
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"ok", "503"}


def test_breaker_states_steps_through_open_and_closed(recorder: Recorder) -> None:
    transitions = recorder.frame("breaker")
    assert transitions["state"].tolist() == ["open", "half-open", "closed"]
    ax = breaker_states(transitions, until=recorder.now())
    assert set(ax.lines[0].get_ydata()) == {0, 1, 2}


def test_attempt_timeline_draws_ok_green_and_errors_red_whatever_comes_first(
        recorder: Recorder) -> None:
    attempts = recorder.frame("attempt")
    failures_first = attempts.sort_values("outcome", key=lambda s: s.eq("ok"))
    ax = attempt_timeline(failures_first)
    colours = {t.get_text(): h.get_facecolor()
               for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles,
                             strict=True)}
    assert colours["ok"] == matplotlib.colors.to_rgba("tab:green")
    assert colours["503"] == matplotlib.colors.to_rgba("tab:red")
