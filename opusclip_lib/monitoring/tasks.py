"""A background task scoped to an ``async with`` block: it never outlives the block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any


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
