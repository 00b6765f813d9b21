"""Waiting for a state the code under test offers no event for: poll the condition, never
sleep a guessed time. The test's timeout (pytest-timeout) bounds a condition that never holds."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def until(condition: Callable[[], bool | Awaitable[bool]], *, poll_s: float = 0.0) -> None:
    """Return once ``condition()`` holds, yielding to the loop between checks (``poll_s`` > 0
    when the state changes in another thread, process or server, so the check does not spin).
    ``condition`` may be async: a query, or a step that also acts (publishes again)."""

    async def holds() -> bool:
        result = condition()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    while not await holds():  # noqa: ASYNC110 - the one poll, for states with no event
        await asyncio.sleep(poll_s)
