"""Start, then poll: Stability's creative upscale against the sandbox, on a fake clock."""

from __future__ import annotations

import asyncio
import io
import random

import httpx
import pytest
from PIL import Image

from opusclip_lib.api import (
    GenerationPendingError,
    InvalidRequestError,
    PollPolicy,
    PollStats,
    StabilityClient,
)
from opusclip_lib.sandbox import SandboxConfig, build_app

HANG_GUARD_S = 20


def png(size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeClock:
    """Time that moves only when the poller sleeps: deadlines without waiting for them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def policy(clock: FakeClock, deadline_s: float = 60.0) -> PollPolicy:
    return PollPolicy(first_delay_s=1.0, max_delay_s=8.0, multiplier=2.0, deadline_s=deadline_s,
                      sleep=clock.sleep, clock=clock, rng=random.Random(7))


@pytest.fixture
def config() -> SandboxConfig:
    config = SandboxConfig.unlimited()
    config.stability.job_s = 0.0
    return config


@pytest.fixture
def app(config):
    return build_app(config)


def client(app) -> StabilityClient:
    return StabilityClient("sk-test", transport=httpx.ASGITransport(app))


def test_delays_grow_with_jitter_and_stay_under_the_cap():
    delays = PollPolicy(first_delay_s=1.0, max_delay_s=8.0, multiplier=2.0,
                        rng=random.Random(1)).delays()
    taken = [next(delays) for _ in range(8)]
    steps = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(step / 2 <= delay <= step for delay, step in zip(taken, steps, strict=True))
    assert len(set(taken)) == len(taken)  # jittered: no two equal


async def test_a_finished_job_is_fetched_once(app):
    async with client(app) as sd:
        image = await sd.upscale_creative(png(), "a sharper fox")
    jobs = app.state.sandbox.stability.jobs
    assert Image.open(io.BytesIO(image.image)).size == (128, 128)  # 32 px, upscaled 4x
    assert jobs.starts == 1
    assert list(jobs.deliveries.values()) == [1]


async def test_polls_back_off_until_the_job_is_ready(app, config):
    config.stability.job_s = 3600
    clock = FakeClock()
    jobs = app.state.sandbox.stability.jobs
    stats = PollStats()
    async with client(app) as sd:
        generation_id = await sd.start_upscale(png(), "a sharper fox")

        async def sleep_then_maybe_finish(seconds: float) -> None:
            await clock.sleep(seconds)
            if len(clock.sleeps) == 3:
                jobs.jobs[generation_id].ready_at = 0  # the job finishes during the third wait

        waiting = PollPolicy(first_delay_s=1.0, max_delay_s=8.0, multiplier=2.0, clock=clock,
                             sleep=sleep_then_maybe_finish, rng=random.Random(7))
        image = await sd.resume(generation_id, poll_policy=waiting, stats=stats)
    assert image.finish_reason == "SUCCESS"
    assert stats.polls == 4
    assert jobs.polls[generation_id] == 4
    assert jobs.deliveries[generation_id] == 1
    for delay, step in zip(clock.sleeps, (1, 2, 4), strict=True):
        assert step / 2 <= delay <= step


async def test_past_the_deadline_the_error_keeps_the_id_and_resume_finishes(app, config):
    config.stability.job_s = 3600
    clock = FakeClock()
    jobs = app.state.sandbox.stability.jobs
    async with client(app) as sd:
        with pytest.raises(GenerationPendingError) as caught:
            await sd.upscale_creative(png(), "a sharper fox", poll_policy=policy(clock, 30))
        generation_id = caught.value.generation_id
        assert clock.now == 30  # the last sleep was cut to the deadline
        jobs.jobs[generation_id].ready_at = 0  # the job finishes while nobody waits
        image = await sd.resume(generation_id, poll_policy=policy(FakeClock()))
    assert image.image
    assert jobs.starts == 1
    assert jobs.deliveries[generation_id] == 1


async def test_a_transient_poll_failure_does_not_restart_the_job(app, config):
    config.inject("stability.results", "server_error", times=2)
    stats = PollStats()
    async with client(app) as sd:
        generation_id = await sd.start_upscale(png(), "a sharper fox")
        image = await sd.resume(generation_id, poll_policy=policy(FakeClock()), stats=stats)
    jobs = app.state.sandbox.stability.jobs
    assert image.image
    assert stats.transient_failures == 2
    assert jobs.starts == 1


async def test_a_rate_limited_poll_waits_at_least_what_the_server_asks(app, config):
    config.inject("stability.results", "rate_limit", times=1, retry_after_s=3)
    clock = FakeClock()
    async with client(app) as sd:
        generation_id = await sd.start_upscale(png(), "a sharper fox")
        await sd.resume(generation_id, poll_policy=policy(clock))
    assert clock.sleeps[0] >= 3  # Retry-After, not the 0.5-1 s first step


async def test_a_permanent_poll_failure_is_raised_at_once():
    async with client(build_app(SandboxConfig.unlimited())) as sd:
        with pytest.raises(Exception, match="was not found") as caught:
            await sd.resume("f" * 64, poll_policy=policy(FakeClock()))
    assert not caught.value.retryable


async def test_cancelling_stops_the_polling(app, config):
    config.stability.job_s = 3600
    polling = asyncio.Event()

    async def park(seconds: float) -> None:
        polling.set()
        await asyncio.Event().wait()  # until cancelled

    jobs = app.state.sandbox.stability.jobs
    async with client(app) as sd:
        generation_id = await sd.start_upscale(png(), "a sharper fox")
        task = asyncio.create_task(sd.resume(
            generation_id, poll_policy=PollPolicy(sleep=park, deadline_s=3600)))
        async with asyncio.timeout(HANG_GUARD_S):
            await polling.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        polls_when_cancelled = jobs.polls[generation_id]
        await asyncio.sleep(0)
    assert polls_when_cancelled == 1
    assert jobs.polls[generation_id] == 1


async def test_a_bad_start_is_refused_before_any_polling(app):
    async with client(app) as sd:
        with pytest.raises(InvalidRequestError, match="image"):
            await sd.upscale_creative(b"not an image", "a sharper fox")
    assert app.state.sandbox.stability.jobs.starts == 0
