"""Tasks that never outlive an ``async with`` block.

:func:`task_scope` is a TaskGroup that fails like ``gather``: with the first error itself, not
an ExceptionGroup. :func:`background` runs one task beside the block (a listener, a poller).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any


@asynccontextmanager
async def task_scope() -> AsyncIterator[asyncio.TaskGroup]:
    """Run tasks under :class:`asyncio.TaskGroup` and re-raise the first failure unwrapped.

    The group gives the guarantees we want (the first error cancels every sibling, the scope
    waits for all of them, none outlives the block); unwrapping lets callers write a plain
    ``except httpx.HTTPError`` instead of ``except*``. If several tasks failed at once, the
    others are mentioned in a note on the one raised.
    """
    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except BaseExceptionGroup as errors:
        first = errors.exceptions[0]
        for other in errors.exceptions[1:]:
            first.add_note(f"another task also failed: {other!r}")
        # ``from`` keeps the error's own cause and hides the CancelledError the scope was
        # handling when it raised, which says nothing about what went wrong.
        raise first from first.__cause__


@asynccontextmanager
async def background(work: Coroutine[Any, Any, None], *, name: str) -> AsyncIterator[None]:
    """Run ``work`` while the block runs; on exit cancel it, wait for it, and re-raise the
    error it failed with (if it did), so a dead listener is never silently ignored."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        [outcome] = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, Exception):
            raise outcome
