"""Resilience for API calls: rate limits, caching, retries, circuit breaking and fallbacks.

Start with :func:`defaults_for`, which builds a :class:`Resilience` policy with each provider's real
limits and SDK retry rules; every piece can also be built and composed by hand.
"""

from opusclip_lib.resilience.adaptive import AdaptiveLimiter, parse_go_duration
from opusclip_lib.resilience.breaker import BreakerState, CircuitBreaker
from opusclip_lib.resilience.cache import MISS, Cache, MemoryCache, RedisCache, request_key
from opusclip_lib.resilience.errors import CircuitOpenError, QuotaExhaustedError, ResilienceError
from opusclip_lib.resilience.fallback import Fallback, template_captions
from opusclip_lib.resilience.policy import Resilience, ResilienceStats, defaults_for
from opusclip_lib.resilience.quota import YOUTUBE_QUOTA_COSTS, QuotaBudget
from opusclip_lib.resilience.ratelimit import (
    ELEVENLABS_CONCURRENCY,
    ConcurrencyLimiter,
    Limiter,
    RateLimiter,
    Taking,
)
from opusclip_lib.resilience.retry import (
    ELEVENLABS_BACKOFF,
    OPENAI_BACKOFF,
    Backoff,
    RetryPolicy,
    is_transient,
)
from opusclip_lib.resilience.singleflight import SingleFlight

__all__ = [
    "ELEVENLABS_BACKOFF", "ELEVENLABS_CONCURRENCY", "MISS", "OPENAI_BACKOFF", "YOUTUBE_QUOTA_COSTS",
    "AdaptiveLimiter", "Backoff", "BreakerState", "Cache", "CircuitBreaker", "CircuitOpenError",
    "ConcurrencyLimiter", "Fallback", "Limiter", "MemoryCache", "QuotaBudget",
    "QuotaExhaustedError", "RateLimiter", "RedisCache", "Resilience", "ResilienceError",
    "ResilienceStats", "RetryPolicy", "SingleFlight", "Taking", "defaults_for", "is_transient",
    "parse_go_duration", "request_key", "template_captions",
]
