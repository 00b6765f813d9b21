"""Apply one async function to many items: one at a time, all at once, or at most N at once.

Every helper takes a function and the items, never ready-made coroutine objects: a coroutine
that is created but never awaited (because an earlier one failed) makes Python warn, and a
function can be called exactly when there is room for it.
All of them return results in the order of ``items``, whatever order the calls finish in.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from opusclip_lib.metrics import Recorder
from opusclip_lib.pipelines.recording import call_recorded
from opusclip_lib.pipelines.scope import task_scope

T = TypeVar("T")
R = TypeVar("R")


async def map_sequential(func: Callable[[T], Awaitable[R]], items: Iterable[T], *,
                         recorder: Recorder | None = None) -> list[R]:
    """Await each call before starting the next: the baseline the others are measured against."""
    return [await call_recorded(func, item, recorder, worker=0) for item in items]


async def map_gather(func: Callable[[T], Awaitable[R]], items: Iterable[T], *,
                     recorder: Recorder | None = None) -> list[R]:
    """All calls at once with :func:`asyncio.gather`, plus the clean-up ``gather`` leaves out.

    Plain ``gather`` raises the first error but leaves the other calls running in the
    background; here they are cancelled and awaited before the error reaches the caller.
    """
    tasks = [asyncio.create_task(call_recorded(func, item, recorder, worker=index))
             for index, item in enumerate(items)]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:  # a failed call, or the caller cancelled: stop the others, then raise
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def map_task_group(func: Callable[[T], Awaitable[R]], items: Iterable[T], *,
                         recorder: Recorder | None = None) -> list[R]:
    """All calls at once in an :class:`asyncio.TaskGroup`, exactly as the standard library does it.

    A failure cancels the siblings and surfaces as an ``ExceptionGroup`` (catch it with
    ``except*``); use :func:`map_bounded` to get the error itself.
    """
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(call_recorded(func, item, recorder, worker=index))
                 for index, item in enumerate(items)]
    return [task.result() for task in tasks]


async def map_bounded(func: Callable[[T], Awaitable[R]], items: Iterable[T], *, limit: int,
                      recorder: Recorder | None = None) -> list[R]:
    """At most ``limit`` calls in flight; the first error cancels the rest and is raised as is.

    The semaphore is acquired *before* a task is created, so a million items never become a
    million waiting tasks, and a generator of items is read only as fast as slots free up.
    Each call gets a ``worker`` label (0 .. limit-1): the slot it ran in, one timeline lane each.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    semaphore = asyncio.Semaphore(limit)
    free_slots = list(range(limit))
    results: dict[int, R] = {}

    async def run(index: int, item: T) -> None:
        slot = heapq.heappop(free_slots)  # never empty: this task holds one of `limit` permits
        try:
            results[index] = await call_recorded(func, item, recorder, worker=slot)
        finally:
            heapq.heappush(free_slots, slot)
            semaphore.release()

    async with task_scope() as group:
        for index, item in enumerate(items):
            await semaphore.acquire()
            group.create_task(run(index, item))
    return [results[index] for index in range(len(results))]
