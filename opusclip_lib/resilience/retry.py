"""Retry rules copied from the official SDKs, expressed as tenacity strategies.

What is retried (408, 409, 429, >= 500, timeouts, connection errors) is the API clients' call:
their errors say ``retryable``. How long to wait is ours: a server's ``Retry-After`` when it is
sane, otherwise exponential backoff with jitter, the way the OpenAI and ElevenLabs SDKs do it.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from tenacity import (
    DoAttempt,
    DoSleep,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)
from tenacity.wait import wait_base

T = TypeVar("T")

#: Transport failures that mean "try again" even when no client wrapped them.
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.TransportError, TimeoutError, ConnectionError)


def is_retryable(error: BaseException) -> bool:
    """Errors the SDKs retry: the clients' ``retryable`` flag, timeouts, dropped connections."""
    return getattr(error, "retryable", False) is True or isinstance(error, TRANSIENT_ERRORS)


class Backoff(wait_base):
    """``min(initial * 2**n, maximum) * (1 - 0.25 * random())``, unless the server said when.

    A ``retry_after`` above ``retry_after_cap`` is ignored, as the OpenAI SDK does (60 s in 1.x):
    waiting minutes inside one call is worse than failing over to a fallback.
    """

    def __init__(self, initial: float, maximum: float, *, retry_after_cap: float = 60.0,
                 random_fraction: Callable[[], float] = random.random) -> None:
        self.initial = initial
        self.maximum = maximum
        self.retry_after_cap = retry_after_cap
        self._random = random_fraction

    def __call__(self, retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = getattr(error, "retry_after", None)
        if hinted is not None and 0 < hinted <= self.retry_after_cap:
            return float(hinted)
        retries_so_far = retry_state.attempt_number - 1
        delay = min(self.initial * 2.0 ** retries_so_far, self.maximum)
        return delay * (1 - 0.25 * self._random())


#: openai-python: INITIAL_RETRY_DELAY 0.5 s, MAX_RETRY_DELAY 8 s.
OPENAI_BACKOFF = Backoff(0.5, 8.0)
#: elevenlabs-python (Fern): 1 s doubling, at most 60 s.
ELEVENLABS_BACKOFF = Backoff(1.0, 60.0)


class RetryPolicy:
    """Bounded attempts (``max_retries`` + 1 in all), a backoff, and the sleep to wait with.

    tenacity makes every decision (retry this error? stop now? wait how long? re-raise what?)
    through its ``Retrying`` state machine; :meth:`run` only performs the awaits. That is what
    ``AsyncRetrying`` does too, but ``AsyncRetrying`` inspects each of its callbacks for
    coroutine-ness on every step: on the project's machine ~95 us of overhead per successful
    call against ~27 us for this loop, paid by every uncached request at thousands a second.
    Tests pass a fake ``sleep`` so a scenario with 8-second backoffs runs instantly.
    """

    def __init__(self, max_retries: int = 2, backoff: Backoff = OPENAI_BACKOFF,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep = sleep
        # Safe to share between concurrent calls: iter() never awaits, so no call can see
        # another's half-finished step. Per-call state lives in each RetryCallState.
        self._decider = Retrying(stop=stop_after_attempt(max_retries + 1), wait=backoff,
                                 retry=retry_if_exception(is_retryable), reraise=True)

    async def run(self, attempt: Callable[[int, float], Awaitable[T]]) -> T:
        """Call ``attempt(number, waited)`` until it succeeds or tenacity gives up.

        ``number`` counts from 1; ``waited`` is the backoff slept just before it (0 at first).
        The last error is re-raised as it is, never wrapped in ``RetryError``.

        The first attempt runs before tenacity's state exists: a first-time success (nearly
        every call) needs no decision, and building the state costs ~30 us. A failure is then
        handed to tenacity as its first outcome, so tenacity still decides everything.
        """
        try:
            return await attempt(1, 0.0)
        except BaseException:  # tenacity's predicate decides; cancellation is re-raised
            first_failure = sys.exc_info()
        decider = self._decider
        decider.begin()  # tenacity's statistics are per thread and must exist before iter()
        state = RetryCallState(decider, fn=None, args=(), kwargs={})
        decider.iter(state)  # DoAttempt: the first attempt, already made
        state.set_exception(first_failure)  # type: ignore[arg-type]
        del first_failure
        while True:
            action = decider.iter(state)
            if isinstance(action, DoAttempt):
                try:
                    result = await attempt(state.attempt_number, state.upcoming_sleep)
                except BaseException:
                    state.set_exception(sys.exc_info())  # type: ignore[arg-type]
                else:
                    state.set_result(result)
            elif isinstance(action, DoSleep):
                state.prepare_for_next_attempt()
                await self.sleep(action)
            else:
                return action  # type: ignore[no-any-return]
