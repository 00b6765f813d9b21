"""``db.every``: the loop behind the background pollers (heartbeat, liveness, sampling, sweep)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from opusclip_lib.db import OperationalError, every

pytestmark = pytest.mark.looptime  # the pauses run on a fake loop clock: exact and instant


async def test_a_skipped_error_is_logged_and_the_next_round_runs(
        caplog: pytest.LogCaptureFixture) -> None:
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def round_() -> None:
        starts.append(loop.time())
        if len(starts) == 2:
            raise OperationalError("database restarting")
        if len(starts) == 4:
            raise ValueError("a bug")

    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="a bug"):
        await every(5, round_, skip=OperationalError, skipped="beat skipped")
    assert starts == [0, 5, 10, 15]
    assert [record.getMessage() for record in caplog.records] == [
        "beat skipped: OperationalError('database restarting')"]


async def test_pause_first_pauses_before_the_first_round() -> None:
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def round_() -> None:
        starts.append(loop.time())

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(11):
            await every(5, round_, pause_first=True)
    assert starts == [5, 10]


async def test_a_cancellation_kept_by_a_finished_round_ends_the_loop() -> None:
    """A round whose work finished despite a cancellation (a COMMIT that went through) swallows
    it; the loop must still stop rather than poll on."""
    rounds = 0

    async def round_() -> None:
        nonlocal rounds
        rounds += 1
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # the work completes; the cancellation is kept, not raised

    poller = asyncio.create_task(every(5, round_))
    await asyncio.sleep(0.5)
    poller.cancel()
    await asyncio.wait({poller}, timeout=60)  # without the check it polls on: fail, not hang
    assert poller.cancelled(), f"still polling after {rounds} rounds"
    assert rounds == 1
