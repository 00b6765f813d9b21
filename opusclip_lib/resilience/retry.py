"""Retry rules copied from the official SDKs, run by tenacity's public ``AsyncRetrying``.

What is retried (408, 409, 429, >= 500, timeouts, connection errors) is what the library marks
transient: ``isinstance(error, TransientError)``, plus the network errors of libraries that do
not know our tree. How long to wait is ours: a transient error's ``retry_after_s`` when it is
sane, otherwise exponential backoff with jitter, the way the OpenAI and ElevenLabs SDKs do it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base

from opusclip_lib.errors import TransientError

T = TypeVar("T")

#: Other libraries' errors that mean "try again": ours say so by inheriting TransientError.
FOREIGN_TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.TransportError, TimeoutError,
                            ConnectionError)


def is_transient(error: BaseException) -> bool:
    """Errors the SDKs retry: our transient errors, timeouts and dropped connections."""
    return isinstance(error, (TransientError, *FOREIGN_TRANSIENT_ERRORS))


class Backoff(wait_base):
    """``min(initial * 2**n, maximum) * (1 - 0.25 * random())``, unless the server said when.

    A ``retry_after_s`` above ``retry_after_cap_s`` is ignored, as the OpenAI SDK does (60 s in
    1.x): waiting minutes inside one call is worse than failing over to a fallback.
    """

    def __init__(self, initial_s: float, maximum_s: float, *, retry_after_cap_s: float = 60.0,
                 random_fraction: Callable[[], float] = random.random) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.retry_after_cap_s = retry_after_cap_s
        self._random = random_fraction

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = error.retry_after_s if isinstance(error, TransientError) else None
        if hinted is not None and 0 < hinted <= self.retry_after_cap_s:
            return float(hinted)
        retries_so_far = retry_state.attempt_number - 1
        delay_s = min(self.initial_s * 2.0 ** retries_so_far, self.maximum_s)
        return delay_s * (1 - 0.25 * self._random())


#: openai-python: INITIAL_RETRY_DELAY 0.5 s, MAX_RETRY_DELAY 8 s.
OPENAI_BACKOFF = Backoff(0.5, 8.0)
#: elevenlabs-python (Fern): 1 s doubling, at most 60 s.
ELEVENLABS_BACKOFF = Backoff(1.0, 60.0)


class RetryPolicy:
    """Bounded attempts (``max_retries`` + 1 in all), a backoff, and the sleep to wait with.

    tenacity's ``AsyncRetrying`` makes every decision (retry this error? stop now? wait how
    long? re-raise what?). Tests pass a fake ``sleep`` so a scenario with 8-second backoffs runs
    instantly.
    """

    def __init__(self, max_retries: int = 2, backoff: Backoff = OPENAI_BACKOFF,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep = sleep
        self._retrying = AsyncRetrying(sleep=sleep, stop=stop_after_attempt(max_retries + 1),
                                       wait=backoff, retry=retry_if_exception(is_transient),
                                       reraise=True)

    async def after(self, failure: Exception,
                    attempt: Callable[[int, float], Awaitable[T]]) -> T:
        """Once a first attempt has failed with ``failure``: call ``attempt(number, waited_s)``
        until it succeeds or tenacity gives up.

        The caller makes the first attempt itself, outside tenacity: a first-time success
        (nearly every call) needs no decision, and starting tenacity costs far more than the
        call's own overhead. ``failure`` is tenacity's first outcome, so tenacity still decides
        everything. ``number`` counts from 2; ``waited_s`` is the backoff slept just before it.
        The last error is re-raised as it is, never wrapped in ``RetryError``; cancellation is
        never retried.
        """
        first_failure: Exception | None = failure
        async for trying in self._retrying.copy():  # a copy: its state is per call
            with trying:
                state = trying.retry_state
                if first_failure is not None:
                    failed, first_failure = first_failure, None
                    raise failed
                result = await attempt(state.attempt_number, state.upcoming_sleep)
        return result
