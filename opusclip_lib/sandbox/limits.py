"""Counters that reject instead of wait, and say when to come back.

The real services answer 429 or 403 at once and report limits in headers; limiters like
``aiolimiter`` make the caller wait instead, so the sandbox keeps these small counters. Limits are
passed on every call (not stored) so a notebook can change them between two requests.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

Clock = Callable[[], float]
PACIFIC = ZoneInfo("America/Los_Angeles")


@dataclass(slots=True)
class BucketState:
    """A continuously refilling bucket after one request: OpenAI's rate-limit header values."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    """Time until the bucket is full again (``x-ratelimit-reset-*``)."""
    retry_s: float = 0.0
    """Time until this request would fit (``Please try again in ...``); 0 when allowed."""


@dataclass
class TokenBuckets:
    """One bucket per key holding up to ``limit`` units, refilled at ``limit`` per ``period_s``."""

    period_s: float = 60.0
    clock: Clock = time.monotonic
    _levels: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, amount: int, limit: int) -> BucketState:
        now = self.clock()
        level, stamp = self._levels.get(key, (float(limit), now))
        rate = limit / self.period_s
        level = min(float(limit), level + (now - stamp) * rate)
        allowed = amount <= level
        if allowed:
            level -= amount
        self._levels[key] = (level, now)
        retry = 0.0 if allowed else (min(amount, limit) - level) / rate
        return BucketState(allowed, limit, int(level), (limit - level) / rate, retry)

    def reset(self) -> None:
        self._levels.clear()


@dataclass
class SlidingWindow:
    """At most N requests per key in any ``window_s``; going over blocks the key a while."""

    clock: Clock = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict)
    _blocked_until: dict[str, float] = field(default_factory=dict)

    def hit(self, key: str, limit: int, window_s: float, block_s: float) -> float:
        """Record a request; 0 if allowed, else the seconds the key stays blocked."""
        now = self.clock()
        blocked = self._blocked_until.get(key, 0.0) - now
        if blocked > 0:
            return blocked
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window_s:
            hits.popleft()
        if len(hits) >= limit:
            self._blocked_until[key] = now + block_s
            hits.clear()
            return max(block_s, 1e-9)
        hits.append(now)
        return 0.0

    def reset(self) -> None:
        self._hits.clear()
        self._blocked_until.clear()


@dataclass
class DailyQuota:
    """Units used per key per day in Pacific time (YouTube resets at midnight PT)."""

    today: Callable[[], date] = lambda: datetime.now(PACIFIC).date()
    _used: Counter[tuple[str, date]] = field(default_factory=Counter)

    def charge(self, key: str, cost: int, limit: int) -> bool:
        """Add ``cost`` unless that would go over ``limit``; False means quota exceeded."""
        slot = (key, self.today())
        if self._used[slot] + cost > limit:
            return False
        self._used[slot] += cost
        return True

    def used(self, key: str) -> int:
        return self._used[(key, self.today())]

    def reset(self) -> None:
        self._used.clear()


@dataclass
class Allowance:
    """A running total per key against a fixed budget (ElevenLabs characters, Stability credits)."""

    _spent: Counter[str] = field(default_factory=Counter)

    def remaining(self, key: str, budget: float) -> float:
        return budget - self._spent[key]

    def spend(self, key: str, amount: float) -> None:
        self._spent[key] += amount

    def reset(self) -> None:
        self._spent.clear()


class TooBusy(Exception):
    """No concurrency slot freed up within the queueing time."""


class ConcurrencyGate:
    """In-flight requests per key; over the limit a request queues briefly, then is refused."""

    def __init__(self) -> None:
        self._active: Counter[str] = Counter()
        self._changed: asyncio.Condition | None = None

    def active(self, key: str) -> int:
        return self._active[key]

    @asynccontextmanager
    async def slot(self, key: str, limit: int | None, wait_s: float) -> AsyncIterator[int]:
        """Hold one slot; yields the number of requests in flight including this one."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        changed = self._changed
        async with changed:
            if limit is not None and self._active[key] >= limit:
                try:
                    async with asyncio.timeout(wait_s):
                        await changed.wait_for(lambda: self._active[key] < limit)
                except TimeoutError:
                    raise TooBusy from None
            self._active[key] += 1
        try:
            yield self._active[key]
        finally:
            async with changed:
                self._active[key] -= 1
                changed.notify_all()

    def reset(self) -> None:
        self._active.clear()
