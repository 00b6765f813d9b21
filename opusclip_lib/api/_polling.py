"""Start, then poll: wait for a job the server runs on its own time.

A slow operation answers at once with a generation id; the result is fetched later, by polling
an endpoint that says "not yet" (HTTP 202) until it is done. :func:`poll` is that loop:

* **Backoff with jitter** between polls (:meth:`PollPolicy.delays`): polling every 100 ms wastes
  requests, and a thousand clients started together must not poll in lockstep.
* **An overall deadline**: past it, :class:`~opusclip_lib.api.errors.GenerationPendingError`
  carries the generation id, so the caller can resume later without paying for a new job.
* **Transient failures do not restart the job**: a poll that fails with a transient error
  (a 5xx, a dropped connection, a 429, whose ``Retry-After`` it honours) counts as "not yet".
* **The result is fetched once**: the poll that gets the 200 *is* the download.
* **Cancellation stops it**: the loop only ever waits in ``sleep`` or in a poll, both of which
  a cancelled task leaves at once; nothing is left running.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from opusclip_lib.api.errors import APIError, GenerationPendingError
from opusclip_lib.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often and how long to poll. ``sleep`` and ``clock`` are injectable for tests."""

    first_delay_s: float = 2.0
    max_delay_s: float = 15.0
    multiplier: float = 1.5
    deadline_s: float = 300.0
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)

    def delays(self) -> Iterator[float]:
        """Growing delays, each drawn from its upper half ("equal jitter"): never shorter than
        half the step, never in step with another client."""
        step = self.first_delay_s
        while True:
            yield step / 2 + self.rng.uniform(0, step / 2)
            step = min(self.max_delay_s, step * self.multiplier)


@dataclass(slots=True)
class PollStats:
    polls: int = 0
    transient_failures: int = 0


async def poll(fetch: Callable[[], Awaitable[T | None]], *, generation_id: str, provider: str,
               policy: PollPolicy, stats: PollStats | None = None) -> T:
    """Call ``fetch`` (``None`` means "still running") until it returns a result, or raise
    :class:`GenerationPendingError` once ``policy.deadline_s`` has passed."""
    stats = stats if stats is not None else PollStats()
    deadline = policy.clock() + policy.deadline_s
    delays = policy.delays()
    while True:
        wait_at_least = 0.0
        stats.polls += 1
        try:
            result = await fetch()
        except APIError as exc:
            if not isinstance(exc, TransientError):
                raise
            stats.transient_failures += 1
            wait_at_least = exc.retry_after_s or 0.0
            result = None
        if result is not None:
            return result
        remaining = deadline - policy.clock()
        if remaining <= 0:
            raise GenerationPendingError(
                f"still running after {policy.deadline_s:g} s and {stats.polls} poll(s)",
                provider=provider, generation_id=generation_id)
        await policy.sleep(min(max(next(delays), wait_at_least), remaining))
