"""Riding out a database outage: the worker retries what the database refused as *operational*
(a lost connection, a pool that cannot reconnect, a lock timeout) with capped exponential
backoff and full jitter (a random wait up to ``FIRST_BACKOFF_S * 2**n``, so workers that lost
the database together do not all come back in the same instant), and carries on once the
database answers again.

Bounded both ways: no wait is longer than :data:`MAX_BACKOFF_S`, and after
:data:`OUTAGE_PATIENCE_S` of failures in a row the error is raised, so a database that is gone
for good still ends the run with a typed error. Anything but ``OperationalError`` (bad input, a
broken constraint, a bug) is raised at once: retrying cannot fix it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from opusclip_lib.db import OperationalError

T = TypeVar("T")
logger = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0
OUTAGE_PATIENCE_S = 120.0
"""Four times the default ``stale_after_s``: long enough for a database restart or failover."""


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    logger.warning("database unavailable (%s), retry %d in %.2f s", error,
                   state.attempt_number, state.upcoming_sleep)


async def ride_out(call: Callable[[], Awaitable[T]], *,
                   patience_s: float = OUTAGE_PATIENCE_S) -> T:
    """``await call()``, again after each ``OperationalError`` until ``patience_s`` have passed."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(OperationalError),
        wait=wait_random_exponential(multiplier=FIRST_BACKOFF_S, max=MAX_BACKOFF_S),
        stop=stop_after_delay(patience_s), before_sleep=_log_retry, reraise=True)
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("tenacity stops by re-raising the last error")  # pragma: no cover
