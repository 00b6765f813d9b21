"""A pipeline of stages joined by bounded ``asyncio.Queue``s: download -> transcribe -> render.

Each stage has its own number of workers, so a slow stage gets more of them. Queues are
bounded, so a fast stage waits (backpressure) instead of piling up work in memory: at any
moment the items in flight are at most the queue sizes plus the workers, however long the
source. Shutdown uses one sentinel per worker; an error anywhere cancels every task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from opusclip_lib.metrics import Recorder
from opusclip_lib.pipelines.recording import call_recorded
from opusclip_lib.pipelines.scope import task_scope

_DONE: Final = object()
"""Put once per worker after the last item: "no more work, exit your loop"."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a pipeline.

    ``queue_size`` bounds the queue *in front of* this stage (default: one item per worker).
    With ``fan_out=True``, ``func`` returns an iterable and each element goes downstream on
    its own: one video becomes several clips, or an empty list drops the item.
    """

    name: str
    func: Callable[[Any], Awaitable[Any]]
    workers: int = 1
    queue_size: int | None = None
    fan_out: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"stage {self.name!r}: workers must be at least 1")
        if self.queue_size is not None and self.queue_size < 1:
            # asyncio.Queue(maxsize=0) means *unbounded*: exactly what a pipeline must avoid.
            raise ValueError(f"stage {self.name!r}: queue_size must be at least 1")

    def make_queue(self) -> asyncio.Queue[Any]:
        return asyncio.Queue(maxsize=self.queue_size or self.workers)


class _Outlet(Protocol):
    """Where a stage sends its results: the next stage's queue, or the final results."""

    async def put(self, item: Any) -> None: ...

    async def close(self) -> None: ...


@dataclass
class _QueueOutlet:
    queue: asyncio.Queue[Any]
    readers: int

    async def put(self, item: Any) -> None:
        await self.queue.put(item)

    async def close(self) -> None:
        for _ in range(self.readers):
            await self.queue.put(_DONE)


@dataclass
class _Collector:
    results: list[Any] | None

    async def put(self, item: Any) -> None:
        if self.results is not None:
            self.results.append(item)

    async def close(self) -> None:
        return None


@dataclass
class _Countdown:
    """Workers of one stage still running; the last one to finish closes the outlet."""

    remaining: int

    def finish(self) -> bool:
        self.remaining -= 1
        return self.remaining == 0


async def _feed(source: Iterable[Any] | AsyncIterable[Any], outlet: _Outlet) -> None:
    if isinstance(source, AsyncIterable):
        async for item in source:
            await outlet.put(item)
    else:
        for item in source:
            await outlet.put(item)
    await outlet.close()


async def _work(stage: Stage, worker: int, inbox: asyncio.Queue[Any], outlet: _Outlet,
                running: _Countdown, recorder: Recorder | None) -> None:
    while (item := await inbox.get()) is not _DONE:
        result = await call_recorded(stage.func, item, recorder, name=stage.name,
                                     stage=stage.name, worker=f"{stage.name}-{worker}")
        for output in result if stage.fan_out else (result,):
            await outlet.put(output)
    if running.finish():
        await outlet.close()


async def run_pipeline(source: Iterable[Any] | AsyncIterable[Any], stages: Sequence[Stage], *,
                       recorder: Recorder | None = None, keep_results: bool = True) -> list[Any]:
    """Push every item of ``source`` through ``stages``; return the last stage's results.

    Results come in the order they finished (several workers race), so let the last stage
    return something that identifies its item. ``keep_results=False`` discards them, for a
    last stage that stores its output itself: memory then stays flat for any source length.
    The first error cancels all workers and the feeder and is raised as is.
    """
    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    inboxes = [stage.make_queue() for stage in stages]
    results: list[Any] = []
    outlets: list[_Outlet] = [_QueueOutlet(queue, stage.workers)
                              for queue, stage in zip(inboxes[1:], stages[1:], strict=True)]
    outlets.append(_Collector(results if keep_results else None))
    async with task_scope() as group:
        group.create_task(_feed(source, _QueueOutlet(inboxes[0], stages[0].workers)))
        for stage, inbox, outlet in zip(stages, inboxes, outlets, strict=True):
            running = _Countdown(stage.workers)
            for worker in range(stage.workers):
                group.create_task(_work(stage, worker, inbox, outlet, running, recorder))
    return results
