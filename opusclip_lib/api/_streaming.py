"""Streamed responses: the body handed out piece by piece, as it arrives.

:func:`open_stream` is the streaming twin of ``APIClient._exchange``: same request, same error
mapping, same accounting, but the caller reads the body chunk by chunk inside ``async with``.

* **Retries only before the first byte.** Opening the stream (status, headers *and* the first
  chunk) is the operation the resilience policy retries; once a byte has been handed to the
  caller, a retry would repeat what the caller already saw, so a later failure is raised.
* **A timeout between chunks.** Each ``receive()`` waits at most ``chunk_timeout_s``: a stream
  may run for minutes, but a gap longer than that is a stall
  (:class:`~opusclip_lib.api.errors.StreamTimeoutError`).
* **Leaving the block closes the connection**, whether the body was read or not (``break``,
  an exception, cancellation): an unread body cannot go back to the pool.
* **Measured:** time to first byte, bytes, chunks and throughput land in the recorder as one
  ``http`` event when the block ends; the caller adds its own labels (tokens, time to first
  token) to :attr:`BodyStream.labels`.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from opusclip_lib.api._headers import request_id_of
from opusclip_lib.api.errors import (
    APIConnectionError,
    APITimeoutError,
    StreamDetails,
    StreamInterruptedError,
    StreamTimeoutError,
    error_from_response,
)
from opusclip_lib.api.transport import Outgoing, StreamedResponse
from opusclip_lib.resilience.fallback import Fallback

if TYPE_CHECKING:
    from opusclip_lib.api._base import APIClient


@dataclass(slots=True)
class StreamMeter:
    """When a stream started, when its first byte came, how much came: on one clock."""

    clock: Callable[[], float]
    started_s: float
    first_byte_s: float | None = None
    ended_s: float | None = None
    bytes: int = 0
    chunks: int = 0

    @property
    def ttfb_s(self) -> float | None:
        return None if self.first_byte_s is None else self.first_byte_s - self.started_s

    @property
    def seconds(self) -> float:
        return (self.ended_s if self.ended_s is not None else self.clock()) - self.started_s

    def count(self, chunk: builtins.bytes) -> None:  # ``bytes`` here is the field above
        if chunk:
            if self.first_byte_s is None:
                self.first_byte_s = self.clock()
            self.bytes += len(chunk)
            self.chunks += 1


@dataclass(slots=True)
class BodyStream:
    """An open streamed body: ``await body.receive()`` until it returns ``b""``."""

    provider: str
    status_code: int
    headers: httpx.Headers
    meter: StreamMeter
    chunk_timeout_s: float | None
    _response: StreamedResponse
    _first: bytes | None
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def request_id(self) -> str | None:
        return request_id_of(self.headers)

    async def receive(self) -> bytes:
        """The next piece of the body (``b""`` at its end), within the chunk timeout."""
        if self._first is not None:
            chunk, self._first = self._first, None
            return chunk
        chunk = await receive_within(self._response, self.chunk_timeout_s, self.provider,
                                     self.meter, self.request_id)
        self.meter.count(chunk)
        return chunk

    def interrupted(self, problem: str) -> StreamInterruptedError:
        return StreamInterruptedError(problem, provider=self.provider,
                                      received_bytes=self.meter.bytes,
                                      received_chunks=self.meter.chunks,
                                      status_code=self.status_code, request_id=self.request_id)


async def receive_within(response: StreamedResponse, timeout_s: float | None, provider: str,
                         meter: StreamMeter, request_id: str | None) -> bytes:
    """One ``receive()``, its stall and its cut turned into the typed stream errors."""
    details: StreamDetails = {
        "provider": provider, "received_bytes": meter.bytes, "received_chunks": meter.chunks,
        "status_code": response.status_code, "request_id": request_id}
    try:
        async with asyncio.timeout(timeout_s):
            return await response.receive()
    except (TimeoutError, httpx.TimeoutException):
        raise StreamTimeoutError(f"no data for {timeout_s:g} s: the stream stalled",
                                 **details) from None
    except httpx.TransportError as exc:
        raise StreamInterruptedError(f"the connection broke ({type(exc).__name__})",
                                     **details) from None


@asynccontextmanager
async def open_stream(client: APIClient, operation: str, request: Outgoing, *,
                      chunk_timeout_s: float | None) -> AsyncIterator[BodyStream]:
    """``async with open_stream(...) as body:`` a streamed exchange (see the module doc)."""
    recorder = client.recorder
    clock = recorder.now if recorder is not None else time.perf_counter
    meter = StreamMeter(clock, clock())

    async def attempt() -> tuple[AsyncExitStack, StreamedResponse, bytes]:
        meter.started_s, meter.first_byte_s, meter.bytes, meter.chunks = clock(), None, 0, 0
        opened = AsyncExitStack()
        try:
            response = await _open(client, opened, request)
            first = await receive_within(response, chunk_timeout_s, client.provider, meter,
                                         request_id_of(response.headers))
            meter.count(first)
        except BaseException:
            await opened.aclose()
            raise
        return opened, response, first

    error: BaseException | None = None
    body: BodyStream | None = None
    client.streams_open += 1
    try:
        result = await client._call(attempt)
        if isinstance(result, Fallback):  # a stream has no stand-in: say why there is none
            raise APIConnectionError(f"no stream: {result.reason}", provider=client.provider)
        opened, response, first = result
        async with opened:
            body = BodyStream(client.provider, response.status_code, response.headers, meter,
                              chunk_timeout_s, response, first)
            # What the headers say the call cost (ElevenLabs' character-cost); tokens come later
            body.labels.update(client._spend(operation, httpx.Response(
                response.status_code, headers=response.headers), None))
            yield body
    except BaseException as exc:
        error = exc
        raise
    finally:
        client.streams_open -= 1
        meter.ended_s = clock()
        _account(client, operation, meter, body, error)


async def _open(client: APIClient, opened: AsyncExitStack,
                request: Outgoing) -> StreamedResponse:
    """Status and headers, or the typed error for a failed connection or an error status."""
    sender = client._open_sender()
    try:
        response = await opened.enter_async_context(sender.stream(request))
        if response.status_code >= 400:
            answered = await response.read()
    except httpx.TransportError as exc:
        kind = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
        raise kind(client._describe_transport_error(exc, request),
                   provider=client.provider) from None
    if client.resilience is not None:
        client.resilience.observe(response.headers)
    if response.status_code >= 400:
        client.usage.calls += 1
        raise error_from_response(client.provider, answered, redact=client._redact)
    return response


def _account(client: APIClient, operation: str, meter: StreamMeter, body: BodyStream | None,
             error: BaseException | None) -> None:
    usage = client.usage
    if body is not None:
        usage.calls += 1
    if error is not None and not isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        usage.failures += 1
    spent = {name: value for name, value in (body.labels if body else {}).items()
             if name in ("tokens", "prompt_tokens", "completion_tokens", "characters")}
    usage.spent.update(spent)
    recorder = client.recorder
    if recorder is None:
        return
    seconds = meter.seconds
    labels = dict(body.labels) if body is not None else {}
    streamed = seconds - (meter.ttfb_s or 0.0)
    recorder.add(
        "http", f"{client.provider}.{operation}", start=meter.started_s, seconds=seconds,
        ok=error is None, error=None if error is None else type(error).__name__,
        provider=client.provider, status=None if body is None else body.status_code,
        bytes=meter.bytes, chunks=meter.chunks, ttfb_s=meter.ttfb_s, streamed=True,
        bytes_per_s=meter.bytes / streamed if streamed > 0 else None,
        cost=spent.get(client.cost_unit), cost_unit=client.cost_unit,
        request_id=getattr(error, "request_id", None) or (body.request_id if body else None),
        **labels)
