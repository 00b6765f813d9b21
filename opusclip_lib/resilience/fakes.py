"""Test doubles for time and for API failures, for tests and for notebooks that simulate outages.

A :class:`FakeClock` replaces both the clock and the sleep of a component, so a day of quota or a
minute of backoff plays out instantly and deterministically.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from opusclip_lib.errors import OpusClipError, TransientError

#: The SDKs' rule: these statuses (and >= 500, and no answer at all) are worth another try.
TRANSIENT_STATUSES = frozenset({408, 409, 429})


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


class FakeAPIError(OpusClipError):
    """An error shaped like the API clients' errors: ``FakeAPIError(503)`` builds the transient
    subclass, as the clients pick a transient class for 408, 409, 429, 5xx and no answer."""

    def __new__(cls, status_code: int | None, **_details: object) -> FakeAPIError:
        transient = (status_code is None or status_code in TRANSIENT_STATUSES
                     or status_code >= 500)
        error_class = FakeTransientAPIError if transient else cls
        error: FakeAPIError = super().__new__(error_class)
        return error

    def __init__(self, status_code: int | None, *, provider: str = "fake",
                 retry_after_s: float | None = None) -> None:
        super().__init__(f"HTTP {status_code}")
        self.provider = provider
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class FakeTransientAPIError(FakeAPIError, TransientError):
    """What ``FakeAPIError`` builds for a status worth another try."""
