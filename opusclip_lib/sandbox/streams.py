"""What every streaming sandbox endpoint shares: pacing, mid-stream faults and a count of open
streams that tests and notebooks can wait on.

A stream is an async generator of body pieces wrapped by :func:`paced`: it waits the per-chunk
latency before each piece after the first, applies an injected ``cut`` (drop the connection:
the generator raises :class:`StreamCut`, uvicorn closes the socket without the last chunk) or
``stall`` (sleep ``hang_s``) after ``Fault.after_chunks`` pieces, and is counted by a
:class:`StreamTracker` from its first piece until it ends, is cut, or the client goes away.
Mid-stream faults need a served sandbox: in process, ``httpx.ASGITransport`` collects the whole
body before it answers, so there is no "middle" to cut.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager

from starlette.requests import Request

from opusclip_lib.sandbox.config import Fault, Latency


class StreamCut(Exception):
    """Raised inside a response body to drop the connection (an injected ``cut``)."""


class _QuietCuts(logging.Filter):
    """uvicorn logs an exception raised mid-body; an injected cut is not one worth reading."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StreamCut))


logging.getLogger("uvicorn.error").addFilter(_QuietCuts())


class StreamTracker:
    """Open streams of one service, safe to read from another thread (the server runs in one).

    ``opened``/``closed`` count every stream; ``disconnected`` those the client left early.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.open = 0
        self.opened = 0
        self.closed = 0
        self.disconnected = 0

    @contextmanager
    def track(self) -> Iterator[None]:
        with self._changed:
            self.open += 1
            self.opened += 1
        try:
            yield
        except (asyncio.CancelledError, GeneratorExit):
            with self._changed:
                self.disconnected += 1
            raise
        finally:
            with self._changed:
                self.open -= 1
                self.closed += 1
                self._changed.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no stream is open (True), or ``timeout_s`` passes (False): call it
        through ``asyncio.to_thread`` from async code."""
        with self._changed:
            return self._changed.wait_for(lambda: self.open == 0, timeout_s)

    def reset(self) -> None:
        with self._changed:
            self.opened = self.closed = self.disconnected = 0


def stream_fault(request: Request) -> Fault | None:
    """The mid-stream fault the route wrapper handed to this request, if any."""
    return getattr(request.state, "stream_fault", None)


async def paced(pieces: Iterable[bytes], *, latency: Latency, fault: Fault | None,
                tracker: StreamTracker) -> AsyncIterator[bytes]:
    """``pieces`` with a wait before each one after the first, the fault applied, counted.

    The waits follow a schedule (piece n is due ``n`` sampled latencies after the first), not
    a sleep after each send: the time spent encoding and sending is then not added to every
    gap, so a fixed latency gives exactly its rate, however busy the server is.
    """
    loop = asyncio.get_running_loop()
    with tracker.track():
        due = loop.time()
        for sent, piece in enumerate(pieces):
            if fault is not None and sent == fault.after_chunks:
                if fault.kind == "cut":
                    raise StreamCut(f"cut after {sent} chunks (injected)")
                await asyncio.sleep(fault.hang_s)
                due = loop.time()
            elif sent:
                due += latency.sample_s()
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
            yield piece
