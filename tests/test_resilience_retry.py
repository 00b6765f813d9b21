"""Retry: the SDKs' status rules, Retry-After, bounded attempts, backoff curves, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import (
    Backoff,
    ConcurrencyLimiter,
    Resilience,
    RetryPolicy,
    is_transient,
)
from opusclip_lib.resilience.fakes import FakeAPIError, FakeClock


def scripted(*outcomes: object) -> tuple[list[int], Callable[[], Awaitable[object]]]:
    """An operation that raises or returns ``outcomes`` in turn, and a list counting its calls."""
    calls: list[int] = []
    remaining = list(outcomes)

    async def operation() -> object:
        calls.append(1)
        outcome = remaining.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return calls, operation


def policy_with(clock: FakeClock, *, max_retries: int = 2, recorder: Recorder | None = None,
                backoff: Backoff | None = None) -> Resilience:
    backoff = backoff or Backoff(0.5, 8.0, random_fraction=lambda: 0.0)
    return Resilience("openai", retry=RetryPolicy(max_retries, backoff, sleep=clock.sleep),
                      recorder=recorder)


async def test_retries_429_and_5xx_honouring_retry_after() -> None:
    clock, recorder = FakeClock(), Recorder()
    calls, operation = scripted(FakeAPIError(429, retry_after_s=2.5), FakeAPIError(503), "done")
    assert await policy_with(clock, recorder=recorder).call(operation) == "done"
    assert len(calls) == 3
    assert clock.sleeps == [2.5, 1.0]  # the server's hint, then backoff 0.5 * 2**1
    attempts = recorder.frame("attempt")
    assert attempts["attempt"].tolist() == [1, 2, 3]
    assert attempts["wait"].tolist() == [0.0, 2.5, 1.0]
    assert attempts["outcome"].tolist() == ["429", "503", "ok"]
    assert attempts["call"].nunique() == 1


async def test_gives_up_after_bounded_attempts_reraising_the_last_error() -> None:
    clock = FakeClock()
    errors = [FakeAPIError(500), FakeAPIError(502), FakeAPIError(503)]
    calls, operation = scripted(*errors)
    with pytest.raises(FakeAPIError) as failed:
        await policy_with(clock).call(operation)
    assert failed.value is errors[-1]  # the error itself, not a tenacity RetryError
    assert len(calls) == 3
    assert clock.sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_mistakes_are_not_retried(status: int) -> None:
    clock = FakeClock()
    calls, operation = scripted(FakeAPIError(status))
    with pytest.raises(FakeAPIError):
        await policy_with(clock).call(operation)
    assert len(calls) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(("error", "retryable"), [
    (httpx.ConnectTimeout("slow"), True), (httpx.ConnectError("refused"), True),
    (httpx.ReadError("reset"), True), (TimeoutError(), True), (ConnectionResetError(), True),
    (FakeAPIError(408), True), (FakeAPIError(409), True), (FakeAPIError(429), True),
    (FakeAPIError(500), True), (FakeAPIError(401), False), (ValueError("bug"), False),
])
def test_what_counts_as_retryable(error: BaseException, retryable: bool) -> None:
    assert is_transient(error) is retryable


async def test_plain_httpx_timeouts_are_retried() -> None:
    clock = FakeClock()
    calls, operation = scripted(httpx.ReadTimeout("slow"), "done")
    assert await policy_with(clock).call(operation) == "done"
    assert len(calls) == 2


@pytest.mark.parametrize(("backoff", "expected"), [
    (Backoff(0.5, 8.0, random_fraction=lambda: 0.0), [0.5, 1, 2, 4, 8, 8]),       # OpenAI SDK
    (Backoff(1.0, 60.0, random_fraction=lambda: 0.0), [1, 2, 4, 8, 16, 32, 60]),  # ElevenLabs
    (Backoff(0.5, 8.0, random_fraction=lambda: 1.0), [0.375, 0.75, 1.5, 3, 6, 6]),  # max jitter
])
async def test_backoff_curves_follow_the_sdks(backoff: Backoff, expected: list[float]) -> None:
    clock = FakeClock()
    _, operation = scripted(*[FakeAPIError(503)] * len(expected), "done")
    policy = policy_with(clock, max_retries=len(expected), backoff=backoff)
    assert await policy.call(operation) == "done"
    assert clock.sleeps == pytest.approx(expected)


@pytest.mark.parametrize(("retry_after", "expected"), [(3.0, 3.0), (60.0, 60.0), (61.0, 0.5),
                                                       (0.0, 0.5), (None, 0.5)])
async def test_retry_after_above_the_cap_is_ignored(retry_after: float | None,
                                                   expected: float) -> None:
    clock = FakeClock()
    _, operation = scripted(FakeAPIError(429, retry_after_s=retry_after), "done")
    await policy_with(clock).call(operation)
    assert clock.sleeps == [expected]


@pytest.mark.looptime
async def test_cancellation_during_a_retry_wait_is_prompt_and_leaks_nothing() -> None:
    """On looptime's fake loop clock: the cancel lands one second into the 30-second wait."""
    loop = asyncio.get_running_loop()
    slots = ConcurrencyLimiter(2)
    policy = Resilience("openai", concurrency=slots,
                        retry=RetryPolicy(max_retries=2))  # the real asyncio.sleep
    first_attempt = asyncio.Event()

    async def rate_limited() -> str:
        first_attempt.set()
        raise FakeAPIError(429, retry_after_s=30)

    call = asyncio.create_task(policy.call(rate_limited))
    await first_attempt.wait()
    await asyncio.sleep(1)  # now inside the 30-second wait
    started = loop.time()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert loop.time() == started  # not the 30 s the server asked for
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert slots.in_flight == 0
    assert policy.stats.attempts == 1
