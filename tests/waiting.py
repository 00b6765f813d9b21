"""Waiting for a state the code under test offers no event for: poll the condition, never
sleep a guessed time. The test's timeout (pytest-timeout) bounds a condition that never holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool], *, poll_s: float = 0.0) -> None:
    """Return once ``condition()`` holds, yielding to the loop between checks (``poll_s`` > 0
    when the state changes in another thread or process, so the check does not spin)."""
    while not condition():
        await asyncio.sleep(poll_s)
