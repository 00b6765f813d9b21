"""Errors this layer raises itself: a call refused locally, before any request went out.

They carry ``provider`` and ``retry_after_s`` like the API clients' errors, but they are not
transient: retrying at once cannot help, so the retry loop ends on them (a caller may come back
after ``retry_after_s``). The whole library's tree is drawn in :mod:`opusclip_lib.errors`.
"""

from __future__ import annotations

from datetime import datetime

from opusclip_lib.errors import OpusClipError


class ResilienceError(OpusClipError):
    """A call refused locally, before any request went out. Never retried: retrying cannot help."""

    status_code: int | None = None

    def __init__(self, provider: str, message: str, *,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.retry_after_s = retry_after_s


class CircuitOpenError(ResilienceError):
    """The provider's circuit breaker is open (or its half-open trial slots are taken)."""

    def __init__(self, provider: str, retry_after_s: float, *, reason: str) -> None:
        super().__init__(provider, f"{provider}: circuit open ({reason}); next trial in "
                                   f"{retry_after_s:.1f}s", retry_after_s=retry_after_s)


class QuotaExhaustedError(ResilienceError):
    """The local quota budget cannot pay for this call; the request would only earn a 403."""

    def __init__(self, provider: str, *, needed: float, remaining: float, resets_at: datetime,
                 retry_after_s: float) -> None:
        super().__init__(provider, f"{provider}: quota exhausted (needs {needed:g} units, "
                                   f"{remaining:g} left); resets at {resets_at.isoformat()}",
                         retry_after_s=retry_after_s)
        self.needed = needed
        self.remaining = remaining
        self.resets_at = resets_at
