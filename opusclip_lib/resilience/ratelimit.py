"""Limiters that keep a client inside a provider's published limits.

Every limiter is an async context manager, as in aiolimiter, so the policy treats them alike:
``async with limiter.taking(cost):`` around one request (``async with limiter:`` takes a cost of
1). What ``cost`` means depends on the budget: quota units
(:class:`~opusclip_lib.resilience.quota.QuotaBudget`), tokens
(:class:`~opusclip_lib.resilience.adaptive.AdaptiveLimiter`); the two limiters here count requests.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Self

from aiolimiter import AsyncLimiter

#: ElevenLabs concurrent requests per plan; requests above it queue briefly, then get a 429.
ELEVENLABS_CONCURRENCY = {"free": 2, "starter": 3, "creator": 5, "pro": 10, "scale": 15,
                          "business": 15}


class Limiter(ABC):
    """What every limiter shares: entering waits for room, leaving gives back what a request
    holds while in flight. A subclass says how in :meth:`acquire` and :meth:`release`."""

    @abstractmethod
    async def acquire(self, cost: float = 1) -> None:
        """Wait until ``cost`` fits, then spend it (or raise if it never will)."""

    def release(self) -> None:  # noqa: B027 - a default, deliberately empty
        """Nothing to give back by default: a spent request or unit only comes back with time."""

    def taking(self, cost: float = 1) -> Taking:
        """``async with limiter.taking(cost):`` around one request that costs ``cost``."""
        return Taking(self, cost)

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()


class Taking:
    """One request's use of a limiter (see :meth:`Limiter.taking`)."""

    __slots__ = ("_cost", "_limiter")

    def __init__(self, limiter: Limiter, cost: float) -> None:
        self._limiter = limiter
        self._cost = cost

    async def __aenter__(self) -> None:
        await self._limiter.acquire(self._cost)

    async def __aexit__(self, *exc_info: object) -> None:
        self._limiter.release()


class RateLimiter(Limiter):
    """At most ``max_requests`` in any window of ``window_s`` (Stability: 150 per 10 s).

    aiolimiter is a leaky bucket: ``AsyncLimiter(150, 10)`` admits a burst of 150 and keeps draining
    at 15/s, so one 10-second window can see almost 300 requests, and Stability answers the 151st
    with a 429 and a 60-second lock-out. A bucket of capacity 1 draining at the same rate spaces
    requests evenly, which keeps every window at or under the limit at the full sustained rate.
    """

    def __init__(self, max_requests: int, window_s: float) -> None:
        self.max_requests = max_requests
        self.window_s = window_s
        self._bucket = AsyncLimiter(1, window_s / max_requests)

    async def acquire(self, cost: float = 1) -> None:
        """Wait for the next evenly spaced slot; each attempt is one request whatever its cost."""
        await self._bucket.acquire()


class ConcurrencyLimiter(Limiter):
    """At most ``limit`` requests in flight (ElevenLabs plans, or any per-provider bound):
    ``async with slots:`` holds one for the duration of the block.

    Keeps ``in_flight`` and ``peak`` so tests and notebooks can show the bound held.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self._slots = asyncio.Semaphore(limit)

    @classmethod
    def for_plan(cls, plan: str) -> ConcurrencyLimiter:
        """The ElevenLabs concurrency of ``plan`` (free, starter, creator, pro, scale, business)."""
        return cls(ELEVENLABS_CONCURRENCY[plan.lower()])

    async def acquire(self, cost: float = 1) -> None:
        await self._slots.acquire()
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def release(self) -> None:
        self.in_flight -= 1
        self._slots.release()
