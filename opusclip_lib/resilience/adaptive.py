"""A limiter that learns OpenAI's limits from its ``x-ratelimit-*`` response headers.

OpenAI does not publish one limit: it depends on the organisation's tier and the model, and each
response says how much is left and when it refills. So the limiter starts permissive, believes the
latest headers, spends locally between responses (so 100 concurrent callers do not all squeeze
through on one "remaining: 1"), and waits for the reset once a budget reaches zero.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from opusclip_lib.resilience.ratelimit import Limiter

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go duration (``"12ms"``, ``"6m0s"``, ``"1m30.5s"``); ``None`` if malformed."""
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text.strip():
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _parse_number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


class _Budget:
    """One of OpenAI's two budgets (requests or tokens) as the last response described it."""

    __slots__ = ("remaining", "resets_at")

    def __init__(self) -> None:
        self.remaining: float | None = None  # None: not heard from the server yet
        self.resets_at = -math.inf

    def observe(self, headers: Mapping[str, str], kind: str, now: float) -> None:
        remaining = _parse_number(headers.get(f"x-ratelimit-remaining-{kind}"))
        reset = headers.get(f"x-ratelimit-reset-{kind}")
        reset_in = parse_go_duration(reset) if reset is not None else None
        if remaining is not None and reset_in is not None:
            self.remaining = remaining
            self.resets_at = now + reset_in

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds to wait before ``amount`` fits (0 if it fits now)."""
        if self.remaining is None:
            return 0.0
        if now >= self.resets_at:
            self.remaining = None  # refilled: unknown again until the next response says
            return 0.0
        return 0.0 if self.remaining >= amount else self.resets_at - now

    def spend(self, amount: float) -> None:
        if self.remaining is not None:
            self.remaining -= amount


class AdaptiveLimiter(Limiter):
    """Waits for the reset when the server says a budget is spent; ``cost`` is a call's tokens.

    Pass every response's headers to :meth:`observe` (the policy forwards ``Resilience.observe``).
    A request larger than a whole budget still goes out after the reset: the server is the judge.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.requests = _Budget()
        self.tokens = _Budget()
        self.waits = 0  # how many times a caller had to wait for a reset
        self._clock = clock
        self._sleep = sleep

    def observe(self, headers: Mapping[str, str]) -> None:
        now = self._clock()
        self.requests.observe(headers, "requests", now)
        self.tokens.observe(headers, "tokens", now)

    async def acquire(self, cost: float = 1) -> None:
        while True:
            now = self._clock()
            wait = max(self.requests.wait_for(1, now), self.tokens.wait_for(cost, now))
            if wait <= 0:
                break
            self.waits += 1
            await self._sleep(wait)
        self.requests.spend(1)
        self.tokens.spend(cost)
