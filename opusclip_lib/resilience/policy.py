"""One object per provider that wraps every API call in cache, breaker, limits, retry and fallback.

The order of the layers is the design, so it is spelled out in :class:`Resilience`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from opusclip_lib.errors import OpusClipError
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience.adaptive import AdaptiveLimiter
from opusclip_lib.resilience.breaker import DEFAULT_COOL_DOWN_S, BreakerState, CircuitBreaker
from opusclip_lib.resilience.cache import MISS, Cache, MemoryCache
from opusclip_lib.resilience.errors import CircuitOpenError
from opusclip_lib.resilience.fallback import Fallback, describe
from opusclip_lib.resilience.quota import QuotaBudget
from opusclip_lib.resilience.ratelimit import ConcurrencyLimiter, Limiter, RateLimiter
from opusclip_lib.resilience.retry import (
    ELEVENLABS_BACKOFF,
    OPENAI_BACKOFF,
    Backoff,
    RetryPolicy,
    is_transient,
)
from opusclip_lib.resilience.singleflight import SingleFlight

T = TypeVar("T")

STALE_TTL_S = 24 * 3600.0  # how long a last-good value may stand in for a failing service
NO_LIMIT: AbstractAsyncContextManager[object] = nullcontext()
"""What ``async with`` enters when a policy has no limiter or no concurrency bound."""


@dataclass(slots=True)
class ResilienceStats:
    """Plain counters, cheap to bump on every call; the Recorder has the detail."""

    hits: int = 0
    misses: int = 0
    attempts: int = 0
    fallbacks: int = 0

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class Resilience:
    """Wrap calls to one provider: ``await policy.call(lambda: client.get(...), cache_key=key)``.

    Order, outermost first, and why:

    1. **Cache lookup.** A hit spends nothing (no rate slot, no quota unit) and keeps working while
       the provider is down, so it comes before everything else. Concurrent misses for one key
       share a single live call (:class:`SingleFlight`).
    2. **Retry** (tenacity's rules) around each attempt, so each one passes the checks below again.
    3. **Breaker check, per attempt.** An open circuit stops a retry loop mid-way instead of
       spending its remaining attempts on a service known to be down, and it refuses before any
       slot or quota unit is taken. ``CircuitOpenError`` is not transient, so the loop ends.
       Half-open with the trial in flight, an attempt waits for the trial's verdict.
    4. **Concurrency slot**, held only while the request is in flight, never during a backoff.
    5. **Rate / quota limiter**, taken last, right before sending: a request that waited for a
       slot after its rate token would go out later than planned and bunch up with others, so
       the spacing the limiter enforces would not be the spacing the server sees.
    6. **The operation.**
    7. **Cache store**, only for a live success: errors and fallbacks are never cached.
    8. **Fallback** once the retries are spent (or the circuit is open, or the quota gone): the
       last good value from the cache if there is one (real data, only older), else the call's
       ``fallback``; either way wrapped in :class:`Fallback`, so it cannot pass for live data.
       Only provider and network failures fall back; a bug in the operation propagates.

    ``cost`` is what one attempt spends from the limiter: quota units for YouTube, estimated tokens
    for OpenAI, ignored by request-counting limiters. With a ``recorder``, every cache lookup
    (``kind="cache"``), attempt (``kind="attempt"``) and fallback (``kind="fallback"``) is recorded.
    """

    def __init__(self, provider: str, *, limiter: Limiter | None = None,
                 concurrency: ConcurrencyLimiter | int | None = None,
                 breaker: CircuitBreaker | None = None, retry: RetryPolicy | None = None,
                 cache: Cache | None = None, recorder: Recorder | None = None) -> None:
        self.provider = provider
        self.limiter = limiter
        self.concurrency = (ConcurrencyLimiter(concurrency) if isinstance(concurrency, int)
                            else concurrency)
        self.breaker = breaker
        self.retry = retry or RetryPolicy()
        self.cache = cache
        self.recorder = recorder
        self.stats = ResilienceStats()
        self._loads = SingleFlight()
        self._calls = 0

    def observe(self, headers: Mapping[str, str]) -> None:
        """Hand response headers to a limiter that learns from them (OpenAI's); else do nothing."""
        observe = getattr(self.limiter, "observe", None)
        if observe is not None:
            observe(headers)

    async def call(self, operation: Callable[[], Awaitable[T]], *, cache_key: str | None = None,
                   cost: float = 1,
                   fallback: Callable[[BaseException], T | Fallback[T]] | None = None,
                   ) -> T | Fallback[T]:
        """Run ``operation`` under the policy. Callers sharing a ``cache_key`` share the outcome."""
        cache = self.cache
        if cache is None or cache_key is None:
            return await self._live(operation, cost, None, fallback)
        value = await cache.get(cache_key)
        hit = value is not MISS
        if hit:
            self.stats.hits += 1
        else:
            self.stats.misses += 1
        if self.recorder is not None:
            self.recorder.add("cache", self.provider, hit=hit)
        if hit:
            return cast("T", value)
        return await self._loads.do(
            cache_key, lambda: self._live(operation, cost, cache_key, fallback))

    async def _live(self, operation: Callable[[], Awaitable[T]], cost: float,
                    cache_key: str | None,
                    fallback: Callable[[BaseException], T | Fallback[T]] | None,
                    ) -> T | Fallback[T]:
        self._calls += 1
        call = self._calls  # numbers the lanes of the attempt timeline
        answered: list[Exception] = []  # failures the provider itself gave in this call
        try:
            try:  # the first attempt outside tenacity (see RetryPolicy.after): no closure
                result = await self._attempt(operation, cost, call, 1, 0.0)
            except CircuitOpenError:
                raise
            # Any Exception: tenacity decides. Not BaseException: cancellation is never retried.
            except Exception as error:  # noqa: BLE001
                answered.append(error)
                result = await self.retry.after(error, functools.partial(
                    self._retry_attempt, operation, cost, call, answered))
        except CircuitOpenError as refused:
            if not answered:  # nothing reached the provider: the refusal is the whole story
                substitute = await self._substitute(refused, cache_key, fallback)
                if substitute is None:
                    raise
                return substitute
            # The call reached the provider and failed; the breaker only refused the retry.
            # Report what the provider said: a caller may wait out a refusal for free, but this
            # call did fail.
            failure = answered[-1]
            substitute = await self._substitute(failure, cache_key, fallback)
            if substitute is None:
                raise failure from refused
            return substitute
        except Exception as error:
            if not _provider_failure(error):
                raise
            substitute = await self._substitute(error, cache_key, fallback)
            if substitute is None:
                raise
            return substitute
        if cache_key is not None and self.cache is not None:
            await self.cache.set(cache_key, result)
        return result

    async def _retry_attempt(self, operation: Callable[[], Awaitable[T]], cost: float, call: int,
                             answered: list[Exception], number: int, waited: float) -> T:
        """An attempt after the first, keeping what the provider answered in ``answered``."""
        try:
            return await self._attempt(operation, cost, call, number, waited)
        except CircuitOpenError:
            raise
        except Exception as error:
            answered.append(error)
            raise

    async def _attempt(self, operation: Callable[[], Awaitable[T]], cost: float, call: int,
                       number: int, waited: float) -> T:
        self.stats.attempts += 1
        recorder, breaker, concurrency, limiter = (self.recorder, self.breaker, self.concurrency,
                                                   self.limiter)
        queued_at = recorder.now() if recorder is not None else 0.0
        sent_at: float | None = None
        trial = False
        if breaker is not None and breaker.state is BreakerState.HALF_OPEN:
            await breaker.wait_for_trials()
        try:
            if breaker is not None:
                trial = breaker.before_call()
            async with (NO_LIMIT if concurrency is None else concurrency,
                        NO_LIMIT if limiter is None else limiter.taking(cost)):
                if recorder is not None:
                    sent_at = recorder.now()
                result = await operation()
        except BaseException as error:
            if breaker is not None:
                breaker.on_failure(error, trial)
            if recorder is not None:
                self._record_attempt(recorder, call, number, waited, queued_at, sent_at, error)
            raise
        if breaker is not None:
            breaker.on_success(trial)
        if recorder is not None:
            self._record_attempt(recorder, call, number, waited, queued_at, sent_at, None)
        return result

    def _record_attempt(self, recorder: Recorder, call: int, number: int, waited: float,
                        queued_at: float, sent_at: float | None,
                        error: BaseException | None) -> None:
        """One bar of the attempt timeline: from sending (or queueing, if never sent) to outcome."""
        now = recorder.now()
        start = queued_at if sent_at is None else sent_at
        status = getattr(error, "status_code", None)
        outcome = "ok" if error is None else str(status) if status else type(error).__name__
        recorder.add("attempt", self.provider, start=start, seconds=now - start,
                     ok=error is None, error=None if error is None else type(error).__name__,
                     call=call, attempt=number, wait=waited, queued=start - queued_at,
                     sent=sent_at is not None, status=status, outcome=outcome)

    async def _substitute(self, error: Exception, cache_key: str | None,
                          fallback: Callable[[BaseException], T | Fallback[T]] | None,
                          ) -> Fallback[Any] | None:
        """A marked stand-in for a failed call, or ``None`` to let the error propagate."""
        substitute: Fallback[Any] | None = None
        if cache_key is not None and self.cache is not None:
            stale = await self.cache.get_stale(cache_key)
            if stale is not MISS:
                substitute = Fallback(stale, describe(error), source="stale-cache")
        if substitute is None and fallback is not None:
            value = fallback(error)
            substitute = (value if isinstance(value, Fallback)
                          else Fallback(value, describe(error), source="fallback"))
        if substitute is not None:
            self.stats.fallbacks += 1
            if self.recorder is not None:
                self.recorder.add("fallback", self.provider, ok=False,
                                  error=type(error).__name__, source=substitute.source)
        return substitute


def _provider_failure(error: Exception) -> bool:
    """Errors a fallback may cover: the library's own (the clients' and this layer's) and the
    network's. A bug in the caller's code (``KeyError``, ``TypeError``) must surface instead."""
    return isinstance(error, OpusClipError) or is_transient(error)


#: In-flight requests per provider: enough to keep each API's limit busy at typical latency,
#: well under httpx's default pool of 100 connections.
DEFAULT_CONCURRENCY = {"youtube": 10, "openai": 50, "stability": 60}

#: Google's client libraries double from 1 s; Stability publishes no SDK rules, so it gets the
#: patient ElevenLabs curve (its 429 comes with a 60-second lock-out).
_BACKOFF: dict[str, Backoff] = {"youtube": Backoff(1.0, 32.0), "openai": OPENAI_BACKOFF,
                                "stability": ELEVENLABS_BACKOFF,
                                "elevenlabs": ELEVENLABS_BACKOFF}


def defaults_for(provider: str, *, cache: Cache | None = None, cached: bool = True,
                 recorder: Recorder | None = None, plan: str = "free",
                 limiter: Limiter | Literal["default"] | None = "default",
                 concurrency: int | Literal["default"] | None = "default",
                 cool_down_s: float = DEFAULT_COOL_DOWN_S,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Resilience:
    """The policy for ``provider`` ("youtube", "openai", "stability", "elevenlabs") with the
    services' published limits and their SDKs' retry rules, adjusted by the options.

    ``cache`` defaults to a 10-minute in-memory cache keeping last-good values for a day; pass a
    :class:`~opusclip_lib.resilience.cache.RedisCache` to share it, or ``cached=False`` for none.
    ``plan`` is the ElevenLabs plan (its concurrency limit). ``limiter`` replaces the provider's
    rate or quota limiter (``None``: none); ``concurrency`` bounds requests in flight (``None``:
    no bound). ``"default"`` keeps the provider's. ``cool_down_s`` is how long the circuit
    breaker stays open; ``sleep`` is the retry sleep (tests pass a fake).
    """
    default_limiters: dict[str, Callable[[], Limiter | None]] = {
        "youtube": QuotaBudget,
        "openai": AdaptiveLimiter,
        "stability": lambda: RateLimiter(150, 10.0),
        "elevenlabs": lambda: None,
    }
    if provider not in default_limiters:
        raise ValueError(f"unknown provider {provider!r}; "
                         f"expected one of {sorted(default_limiters)}")
    if concurrency != "default":
        slots = None if concurrency is None else ConcurrencyLimiter(concurrency)
    elif provider == "elevenlabs":
        slots = ConcurrencyLimiter.for_plan(plan)
    else:
        slots = ConcurrencyLimiter(DEFAULT_CONCURRENCY[provider])
    if not cached:
        cache = None
    elif cache is None:
        cache = MemoryCache(stale_ttl_s=STALE_TTL_S)
    return Resilience(
        provider,
        limiter=default_limiters[provider]() if limiter == "default" else limiter,
        concurrency=slots,
        breaker=CircuitBreaker(provider, cool_down_s=cool_down_s, recorder=recorder),
        retry=RetryPolicy(max_retries=2, backoff=_BACKOFF[provider], sleep=sleep),
        cache=cache,
        recorder=recorder,
    )
