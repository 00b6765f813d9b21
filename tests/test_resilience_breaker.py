"""Circuit breaker: opens on server failures, short-circuits, probes half-open, closes, re-opens."""

from __future__ import annotations

import asyncio

import pytest

from opusclip_lib.errors import TransientError
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    Fallback,
    Resilience,
    RetryPolicy,
)
from opusclip_lib.resilience.fakes import FakeAPIError, FakeClock

OPEN, CLOSED, HALF_OPEN = BreakerState.OPEN, BreakerState.CLOSED, BreakerState.HALF_OPEN


def tripped(breaker: CircuitBreaker, failures: int) -> None:
    for _ in range(failures):
        breaker.on_failure(FakeAPIError(503), breaker.before_call())


def test_opens_after_threshold_within_window_and_short_circuits() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("stability", failure_threshold=3, window_s=10, cool_down_s=30,
                             clock=clock)
    tripped(breaker, 2)
    clock.advance(11)  # those two have left the window
    tripped(breaker, 2)
    assert breaker.state is CLOSED
    tripped(breaker, 1)
    assert breaker.state is OPEN
    clock.advance(5)
    with pytest.raises(CircuitOpenError) as refused:
        breaker.before_call()
    error = refused.value
    assert (error.provider, error.retry_after_s) == ("stability", 25)
    assert not isinstance(error, TransientError)
    assert "stability: circuit open" in str(error)
    assert "next trial in 25.0s" in str(error)


def test_client_mistakes_do_not_count() -> None:
    breaker = CircuitBreaker("openai", failure_threshold=2, clock=FakeClock())
    for status in (400, 401, 404, 422, 400):
        breaker.on_failure(FakeAPIError(status), breaker.before_call())
    breaker.on_failure(ValueError("bug in our code"), breaker.before_call())
    assert breaker.state is CLOSED


def test_half_open_lets_limited_trials_through_then_closes() -> None:
    clock, recorder = FakeClock(), Recorder()
    breaker = CircuitBreaker("openai", failure_threshold=1, cool_down_s=30, trial_calls=2,
                             clock=clock, recorder=recorder)
    tripped(breaker, 1)
    clock.advance(30)
    first, second = breaker.before_call(), breaker.before_call()
    assert first
    assert second
    assert breaker.state is HALF_OPEN
    with pytest.raises(CircuitOpenError, match="trial call in flight"):
        breaker.before_call()
    breaker.on_success(first)
    assert breaker.state is HALF_OPEN  # one of two trials so far
    breaker.on_success(second)
    assert breaker.state is CLOSED
    assert breaker.transitions == [(0, OPEN), (30, HALF_OPEN), (30, CLOSED)]
    assert recorder.frame("breaker")[["state", "previous"]].values.tolist() == [
        ["open", "closed"], ["half-open", "open"], ["closed", "half-open"]]


def test_failed_trial_reopens_for_another_cool_down() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("openai", failure_threshold=1, cool_down_s=30, clock=clock)
    tripped(breaker, 1)
    clock.advance(30)
    breaker.on_failure(FakeAPIError(502), breaker.before_call())
    assert breaker.state is OPEN
    clock.advance(29)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.advance(1)
    assert breaker.before_call() is True


async def test_policy_short_circuits_without_calling_and_stops_retrying() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("stability", failure_threshold=2, cool_down_s=60, clock=clock)
    policy = Resilience("stability", breaker=breaker,
                        retry=RetryPolicy(max_retries=5, sleep=clock.sleep))
    calls = 0

    async def down() -> bytes:
        nonlocal calls
        calls += 1
        raise FakeAPIError(500)

    with pytest.raises(FakeAPIError) as raised:
        await policy.call(down)
    assert calls == 2  # the breaker opened mid-retry; the other four attempts were not spent
    # The call did reach the provider: its own failure is reported, the refusal is the cause.
    assert isinstance(raised.value.__cause__, CircuitOpenError)

    result = await policy.call(down, fallback=lambda error: b"placeholder")
    assert calls == 2
    assert isinstance(result, Fallback)
    assert isinstance(result.value, bytes)
    assert result.reason.startswith("CircuitOpenError")


async def test_policy_half_open_trial_closes_on_success() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("openai", failure_threshold=1, cool_down_s=10, clock=clock)
    policy = Resilience("openai", breaker=breaker, retry=RetryPolicy(max_retries=0))
    outcomes = [FakeAPIError(503), "recovered"]

    async def flaky() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(FakeAPIError):
        await policy.call(flaky)
    clock.advance(10)
    assert await policy.call(flaky) == "recovered"
    assert breaker.state is CLOSED


async def test_cancelled_trial_frees_its_slot() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("openai", failure_threshold=1, cool_down_s=10, clock=clock)
    policy = Resilience("openai", breaker=breaker, concurrency=1, retry=RetryPolicy(max_retries=0))
    tripped(breaker, 1)
    clock.advance(10)
    started = asyncio.Event()

    async def hangs() -> str:
        started.set()
        await asyncio.sleep(60)
        return "never"

    trial = asyncio.create_task(policy.call(hangs))
    await started.wait()
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert policy.concurrency.in_flight == 0
    assert breaker.state is HALF_OPEN
    assert breaker.before_call() is True  # slot free for a new trial


async def test_half_open_calls_wait_for_the_trials_verdict_instead_of_failing() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("openai", failure_threshold=1, cool_down_s=10, clock=clock)
    policy = Resilience("openai", breaker=breaker, retry=RetryPolicy(max_retries=0))
    tripped(breaker, 1)
    clock.advance(10)
    release = asyncio.Event()

    async def slow_recovery() -> str:
        await release.wait()
        return "recovered"

    trial = asyncio.create_task(policy.call(slow_recovery))
    await asyncio.sleep(0)  # the trial takes the only half-open slot
    sibling = asyncio.create_task(policy.call(slow_recovery))
    await asyncio.sleep(0)
    assert not sibling.done()  # waiting for the verdict, not refused
    release.set()
    assert await trial == "recovered"
    assert await sibling == "recovered"
    assert breaker.state is CLOSED
