"""The ``api_calls`` log: every HTTP exchange a paid call made, keyed by the artifact it pays for.

A stage asks for an artifact through :func:`paid`; the clients' recorder is an
:class:`ExchangeTap`, which hands each exchange that reached a provider to the ``paid`` block
that caused it (a context variable follows the call into the client, retries included). So an
answer served from a response cache, or shared with a concurrent identical call, logs nothing;
a retried request logs each attempt; and the rows say how many times each artifact was paid
for, which is what an operator (or the chaos test) counts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from opusclip_lib.db import Executor, api_calls
from opusclip_lib.metrics import Recorder

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Exchange:
    provider: str
    endpoint: str
    status: int | None
    seconds: float


_made: ContextVar[list[Exchange] | None] = ContextVar("opusclip paid exchanges", default=None)


class ExchangeTap(Recorder):
    """A clients' recorder that passes every event on to ``inner`` (if any) and also hands each
    HTTP exchange to the :func:`paid` call it belongs to."""

    def __init__(self, inner: Recorder | None = None) -> None:
        super().__init__()
        self.inner = inner

    def now(self) -> float:
        return self.inner.now() if self.inner is not None else super().now()

    def add(self, kind: str, name: str, *, start: float | None = None, seconds: float = 0.0,
            ok: bool = True, error: str | None = None, **labels: Any) -> None:
        made = _made.get()
        if kind == "http" and made is not None:
            provider, _, endpoint = name.partition(".")
            made.append(Exchange(provider, endpoint, labels.get("status"), seconds))
        if self.inner is not None:
            self.inner.add(kind, name, start=start, seconds=seconds, ok=ok, error=error,
                           **labels)


@contextmanager
def _collecting() -> Iterator[list[Exchange]]:
    made: list[Exchange] = []
    token = _made.set(made)
    try:
        yield made
    finally:
        _made.reset(token)


async def paid(ex: Executor, artifact_key: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, logged in ``api_calls`` once its answer is in: one row per exchange it made
    (none if a cache answered), ``request_hash`` the hash of ``artifact_key``."""
    with _collecting() as made:
        try:
            answer = await call()
        except Exception:  # the failed exchanges reached the provider too
            await _log(ex, artifact_key, made)
            raise
    await _log(ex, artifact_key, made)
    return answer


async def _log(ex: Executor, artifact_key: str, made: list[Exchange]) -> None:
    digest = api_calls.request_hash(artifact_key)
    for exchange in made:
        await api_calls.record_api_call(ex, exchange.provider, exchange.endpoint, digest,
                                        status=exchange.status or 0,
                                        latency_s=max(exchange.seconds, 0.0))
