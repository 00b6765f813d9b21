"""Profiling a coroutine with pyinstrument in async mode: where one pipeline run spends its time.

In async mode pyinstrument follows the profiled task across its ``await``s: time spent waiting
shows as ``[await]`` frames under the call that awaited, and time the loop spent on *other*
tasks is not charged to this one. :func:`top_frames` turns a session into a small table.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from pyinstrument import Profiler
from pyinstrument.frame import Frame

T = TypeVar("T")

INTERVAL_S = 0.001


async def profiled(work: Awaitable[T], *, interval_s: float = INTERVAL_S) -> tuple[T, Profiler]:
    """Await ``work`` under a profiler in async mode; returns its result and the profiler."""
    profiler = Profiler(interval=interval_s, async_mode="enabled")
    with profiler:
        result = await work
    return result, profiler


def top_frames(profiler: Profiler, count: int = 10) -> list[dict[str, Any]]:
    """The ``count`` functions that held the CPU longest themselves (``cpu_s``: time in no
    callee), with their time spent awaiting (``await_s``) and where they are."""
    session = profiler.last_session
    root = session.root_frame() if session is not None else None
    if root is None:
        return []
    totals: dict[tuple[str, str, int], list[float]] = {}

    def walk(frame: Frame) -> None:
        if not frame.is_synthetic:
            key = (frame.function or "?", frame.file_path_short or "", frame.line_no or 0)
            entry = totals.setdefault(key, [0.0, 0.0])
            entry[0] += sum(c.time for c in frame.children if c.identifier == "[self]")
            entry[0] += frame.time if not frame.children else 0.0
            entry[1] += frame.await_time()
        for child in frame.children:
            walk(child)

    walk(root)
    ranked = sorted(totals.items(), key=lambda item: item[1][0], reverse=True)[:count]
    return [{"function": function, "where": f"{path}:{line}", "cpu_s": round(cpu, 4),
             "await_s": round(waited, 4)} for (function, path, line), (cpu, waited) in ranked]
