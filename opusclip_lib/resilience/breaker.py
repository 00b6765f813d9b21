"""A circuit breaker per provider: stop calling a service that keeps failing, probe it later.

Hand-written on purpose: no maintained asyncio breaker fits. aiobreaker (the asyncio fork of
pybreaker) last released 1.1.0 in October 2020, and its 2026 successor, asyncbreaker, is brand
new; pybreaker's own async support targets Tornado. purgatory is alive, but it is built around a
message bus and unit-of-work for its parent project (blacksmith), counts consecutive failures
rather than failures within a window, and sorts errors with an exclude list instead of the
library's ``TransientError`` marker. The state machine is small enough to read in one sitting,
which is the point of a teaching project.

closed --(``failure_threshold`` failures within ``window_s``)--> open
open --(``cool_down_s`` later, on the next call)--> half-open
half-open --(``trial_calls`` successes)--> closed;  half-open --(a trial fails)--> open

Only failures that say the service is unwell count (the transient kind: 408, 409, 429, 5xx,
timeouts, connection errors). A 400 or 401 is the caller's mistake; tripping on it would hide the
bug behind "circuit open" and punish every other caller.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience.errors import CircuitOpenError
from opusclip_lib.resilience.retry import is_transient

DEFAULT_COOL_DOWN_S = 30.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Call :meth:`before_call` before each attempt, then exactly one of :meth:`on_success` or
    :meth:`on_failure` with what it returned (cancellation included: it frees a trial slot).

    In half-open only the trial calls decide: a call that started before the circuit opened
    reports old news. ``transitions`` keeps ``(clock time, state)`` pairs; with a recorder, each
    change is also an event ``kind="breaker"`` with labels ``state`` and ``previous`` for charts.
    """

    def __init__(self, provider: str, *, failure_threshold: int = 5, window_s: float = 30.0,
                 cool_down_s: float = DEFAULT_COOL_DOWN_S, trial_calls: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 recorder: Recorder | None = None) -> None:
        self.provider = provider
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.cool_down_s = cool_down_s
        self.trial_calls = trial_calls
        self.state = BreakerState.CLOSED
        self.transitions: list[tuple[float, BreakerState]] = []
        self._clock = clock
        self._recorder = recorder
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._trials_in_flight = 0
        self._trial_successes = 0
        self._trial_ended = asyncio.Event()

    async def wait_for_trials(self) -> None:
        """While half-open with every trial slot taken, wait for a trial's verdict (closed, or
        open again with a new cool-down) instead of failing at once. A caller refused here would
        abandon work that shares its fate with the trial (a job's clips run together and stop
        together), cancel the trial with it, and the circuit could never close."""
        while self.state is BreakerState.HALF_OPEN and self._trials_in_flight >= self.trial_calls:
            await self._trial_ended.wait()

    def before_call(self) -> bool:
        """Let the call through (``True`` if it is a half-open trial), or raise
        :class:`CircuitOpenError` saying when to come back."""
        if self.state is BreakerState.CLOSED:
            return False
        now = self._clock()
        if self.state is BreakerState.OPEN:
            reopens_in = self._opened_at + self.cool_down_s - now
            if reopens_in > 0:
                raise CircuitOpenError(self.provider, reopens_in,
                                       reason=f"{self.failure_threshold} failures")
            self._change(BreakerState.HALF_OPEN, now)
        if self._trials_in_flight >= self.trial_calls:
            raise CircuitOpenError(self.provider, 0.0, reason="half-open, trial call in flight")
        self._trials_in_flight += 1
        return True

    def on_success(self, trial: bool) -> None:
        if not trial or self.state is not BreakerState.HALF_OPEN:
            return
        self._trials_in_flight -= 1
        self._trial_successes += 1
        if self._trial_successes >= self.trial_calls:
            self._change(BreakerState.CLOSED, self._clock())
        self._wake_waiters()

    def on_failure(self, error: BaseException, trial: bool) -> None:
        if trial and self.state is BreakerState.HALF_OPEN:
            self._trials_in_flight -= 1
            if is_transient(error):
                self._change(BreakerState.OPEN, self._clock())
            self._wake_waiters()
        elif self.state is BreakerState.CLOSED and is_transient(error):
            now = self._clock()
            failures = self._failures
            failures.append(now)
            while failures[0] <= now - self.window_s:
                failures.popleft()
            if len(failures) >= self.failure_threshold:
                self._change(BreakerState.OPEN, now)

    def _wake_waiters(self) -> None:
        """Release :meth:`wait_for_trials`; later waiters wait for the next verdict."""
        self._trial_ended.set()
        self._trial_ended = asyncio.Event()

    def _change(self, state: BreakerState, now: float) -> None:
        previous, self.state = self.state, state
        self._failures.clear()
        self._trials_in_flight = self._trial_successes = 0
        if state is BreakerState.OPEN:
            self._opened_at = now
        self.transitions.append((now, state))
        if self._recorder is not None:
            self._recorder.add("breaker", self.provider, state=state.value,
                               previous=previous.value)
