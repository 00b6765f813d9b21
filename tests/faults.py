"""Fault injection for the fault-matrix tests: loopback servers that misbehave on purpose, and
the one assertion every row makes.

Everything here listens on 127.0.0.1 only, and never touches the shared servers themselves: a
partition or an outage is a :class:`Proxy` in front of the server that this test controls.
Other fault modules (Redis) import :func:`raises_within` and the servers from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

import pytest

E = TypeVar("E", bound=BaseException)

# The guard that turns a hang into a test failure. Generous on purpose: it proves "bounded",
# not "fast" (the deadlines under test are a few seconds; the machine is shared and slow).
BOUND_S = 30.0


async def raises_within(awaitable: Awaitable[object], expected: type[E],
                        bound_s: float = BOUND_S) -> E:
    """Await ``awaitable``; it must raise ``expected`` (a type from the project's error tree)
    before ``bound_s`` seconds. Returns the error for further checks."""
    guard = asyncio.timeout(bound_s)
    try:
        async with guard:
            await awaitable
    except BaseException as exc:  # noqa: BLE001 - the test must say what escaped instead
        if guard.expired():
            pytest.fail(f"no {expected.__name__} within {bound_s:g} s: the fault hung")
        if isinstance(exc, expected):
            return exc
        pytest.fail(f"expected {expected.__name__}, got {type(exc).__module__}."
                    f"{type(exc).__qualname__}: {exc}")
    pytest.fail(f"expected {expected.__name__}, but the call succeeded")


def other_tasks() -> set[asyncio.Task[object]]:
    """Tasks still alive besides the test's own and the fault injectors' ("fault-*"): a fault
    must not leave any behind."""
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current and not task.done()
            and not task.get_name().startswith("fault-")}


class _Listener:
    """A loopback TCP server that records its connections so it can close them all."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[object]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        task.set_name("fault-injector")  # tests tell their own leftovers from these
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()

    async def listen(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_listening(self) -> None:
        """New connections are refused (the port is closed); open ones stay."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def drop_connections(self) -> None:
        """Reset every open connection (what clients see when a server process dies)."""
        for writer in list(self._writers):
            writer.transport.abort()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def __aenter__(self) -> _Listener:
        await self.listen()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop_listening()
        await self.drop_connections()


class HungServer(_Listener):
    """Accepts TCP connections and never says a word: a wedged server process."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up and closes


class Proxy(_Listener):
    """Forwards loopback TCP to ``target``; :meth:`partition` stops forwarding in both
    directions while keeping every socket open, :meth:`heal` resumes, :meth:`outage` drops the
    connections and refuses new ones until :meth:`restore`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__()
        self._target = (target_host, target_port)
        self._flowing = asyncio.Event()
        self._flowing.set()

    def partition(self) -> None:
        self._flowing.clear()

    def heal(self) -> None:
        self._flowing.set()

    async def outage(self) -> None:
        await self.stop_listening()
        await self.drop_connections()

    async def restore(self) -> None:
        await self.listen(self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pump(reader, upstream_writer), name="fault-injector")
                group.create_task(self._pump(upstream_reader, writer), name="fault-injector")
        finally:
            upstream_writer.close()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            await self._flowing.wait()
            sink.write(data)
            await sink.drain()
        sink.close()
