"""Count calls in flight: the peak is the evidence that a concurrency limit holds."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class InFlight:
    """``with gauge:`` around work (an ``await`` inside is fine); ``peak`` is the most at once."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self.total = 0

    def __enter__(self) -> InFlight:
        self.current += 1
        self.total += 1
        self.peak = max(self.peak, self.current)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.current -= 1

    def wrap(self, func: Callable[[T], Awaitable[R]]) -> Callable[[T], Awaitable[R]]:
        """``func`` with every call counted; keeps its name for recorders and charts."""

        @functools.wraps(func)
        async def counted(item: T) -> R:
            with self:
                return await func(item)

        return counted

    def __repr__(self) -> str:
        return f"InFlight(current={self.current}, peak={self.peak}, total={self.total})"
