"""A TaskGroup that fails like ``gather``: with the first error itself, not an ExceptionGroup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


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
