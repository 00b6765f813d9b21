"""How late the event loop runs: a timer that should wake every ``interval_s`` and notes by how
much it overslept. A coroutine that blocks (``time.sleep``, CPU-bound work, a synchronous
driver) delays every timer and every socket read behind it, and this lag is how it shows.

:func:`slow_callbacks` switches on asyncio's debug mode for a block and collects what it
reports: each callback or task step that held the loop longer than ``slow_callback_duration``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

INTERVAL_S = 0.05


@dataclass
class LagMonitor:
    """Samples of ``(seconds since start, lag in seconds)``; ``observe`` gets each lag too."""

    interval_s: float = INTERVAL_S
    observe: Callable[[float], None] | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)

    @property
    def worst_s(self) -> float:
        return max((lag for _, lag in self.samples), default=0.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        origin = loop.time()
        while True:
            expected = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            now = loop.time()
            lag = max(now - expected, 0.0)
            self.samples.append((now - origin, lag))
            if self.observe is not None:
                self.observe(lag)


@asynccontextmanager
async def monitor_loop_lag(interval_s: float = INTERVAL_S,
                           observe: Callable[[float], None] | None = None,
                           ) -> AsyncIterator[LagMonitor]:
    """Measure the running loop's lag while the block runs (``observe``: e.g. a histogram's)."""
    monitor = LagMonitor(interval_s, observe)
    task = asyncio.create_task(monitor._run(), name="loop lag monitor")
    try:
        yield monitor
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def slow_callbacks(slow_callback_s: float = 0.1) -> Iterator[list[str]]:
    """asyncio's debug mode on the running loop for the block; yields the list its warnings
    ("Executing <Task ...> took 0.2 seconds") are appended to, naming the culprit."""
    loop = asyncio.get_running_loop()
    was_debug, was_slow = loop.get_debug(), loop.slow_callback_duration
    collect = _Collect()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(collect)
    propagate, asyncio_logger.propagate = asyncio_logger.propagate, False
    loop.set_debug(True)
    loop.slow_callback_duration = slow_callback_s
    try:
        yield collect.messages
    finally:
        loop.set_debug(was_debug)
        loop.slow_callback_duration = was_slow
        asyncio_logger.removeHandler(collect)
        asyncio_logger.propagate = propagate
