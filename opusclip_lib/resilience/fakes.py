"""Test doubles for time and for API failures, for tests and for notebooks that simulate outages.

A :class:`FakeClock` replaces both the clock and the sleep of a component, so a day of quota or a
minute of backoff plays out instantly and deterministically.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta


class FakeClock:
    """Monotonic seconds that only move when told to, or when someone sleeps on them."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Record the wait, jump the clock, and still yield once so other tasks can run."""
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def wall(self, origin: datetime) -> datetime:
        """``origin`` moved forward by the clock: a fake wall clock for :class:`QuotaBudget`."""
        return origin + timedelta(seconds=self.now)


class FakeAPIError(Exception):
    """An error shaped like the API clients' errors (the attributes this layer relies on)."""

    def __init__(self, status_code: int | None, *, provider: str = "fake",
                 retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        # The SDKs' rule: 408, 409, 429, >= 500 are worth another try; other 4xx are not.
        self.retryable = status_code is None or status_code in (408, 409, 429) or status_code >= 500
