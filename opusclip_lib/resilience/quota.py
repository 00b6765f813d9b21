"""YouTube's daily quota as a local budget: an exhausted key fails fast instead of earning 403s."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from opusclip_lib.resilience.errors import QuotaExhaustedError
from opusclip_lib.resilience.ratelimit import Limiter

PACIFIC = ZoneInfo("America/Los_Angeles")

#: Units per call, from the YouTube Data API quota calculator.
YOUTUBE_QUOTA_COSTS = {"videos.list": 1, "channels.list": 1, "playlistItems.list": 1,
                       "commentThreads.list": 1, "search.list": 100, "captions.list": 50,
                       "captions.download": 200}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def next_pacific_midnight(moment: datetime) -> datetime:
    """The next midnight in Los Angeles after ``moment`` (DST-aware: midnight is never skipped)."""
    local = moment.astimezone(PACIFIC)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=PACIFIC)


class QuotaBudget(Limiter):
    """Units per day, refilled at midnight Pacific time, as Google does.

    Each attempt is charged as it goes out, failures included: Google charges invalid and failed
    requests too. The budget lives in this process; two processes sharing a key each see a full
    budget, and the server's 403 ``quotaExceeded`` remains the final word.
    """

    def __init__(self, units_per_day: float = 10_000, *, provider: str = "youtube",
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.units_per_day = units_per_day
        self.provider = provider
        self.used = 0.0
        self._clock = clock
        self.resets_at = next_pacific_midnight(clock())

    @property
    def remaining(self) -> float:
        return self.units_per_day - self.used

    async def acquire(self, cost: float = 1) -> None:
        """Charge ``cost`` units, or raise :class:`QuotaExhaustedError` without waiting."""
        now = self._clock()
        if now >= self.resets_at:
            self.used = 0.0
            self.resets_at = next_pacific_midnight(now)
        if self.used + cost > self.units_per_day:
            raise QuotaExhaustedError(self.provider, needed=cost, remaining=self.remaining,
                                      resets_at=self.resets_at,
                                      retry_after_s=(self.resets_at - now).total_seconds())
        self.used += cost
