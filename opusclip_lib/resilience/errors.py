"""Errors this layer raises itself, shaped like the API clients' errors.

The clients' errors carry ``provider``, ``retryable``, ``retry_after`` and ``status_code``; ours
carry the same attributes, so retry, breaker and fallback code treat every failure alike.
"""

from __future__ import annotations

from datetime import datetime


class ResilienceError(Exception):
    """A call refused locally, before any request went out. Never retried: retrying cannot help."""

    retryable = False
    status_code: int | None = None

    def __init__(self, provider: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.retry_after = retry_after


class CircuitOpenError(ResilienceError):
    """The provider's circuit breaker is open (or its half-open trial slots are taken)."""

    def __init__(self, provider: str, retry_after: float, *, reason: str) -> None:
        super().__init__(provider, f"{provider}: circuit open ({reason}); next trial in "
                                   f"{retry_after:.1f}s", retry_after=retry_after)


class QuotaExhaustedError(ResilienceError):
    """The local quota budget cannot pay for this call; the request would only earn a 403."""

    def __init__(self, provider: str, *, needed: float, remaining: float, resets_at: datetime,
                 retry_after: float) -> None:
        super().__init__(provider, f"{provider}: quota exhausted (needs {needed:g} units, "
                                   f"{remaining:g} left); resets at {resets_at.isoformat()}",
                         retry_after=retry_after)
        self.needed = needed
        self.remaining = remaining
        self.resets_at = resets_at
