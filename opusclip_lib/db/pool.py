"""The layer's own pool of driver connections (SQLite, PostgreSQL): a stack of idle ones.

A borrow that finds an idle connection takes it without a timer, a task or a wait, and giving
it back is a list append: an autocommitted statement borrows and returns a connection every
time, and asyncpg's pool spent more Python per borrow (a task per release, two timers) than the
layer spends on the statement. The driver-specific parts (opening, closing, resetting a
session) stay in the backends; only the bookkeeping is here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from opusclip_lib.db.errors import OperationalError
from opusclip_lib.db.timeouts import Deadlines

C = TypeVar("C")


class Pool(Generic[C]):
    """Up to ``max_size`` connections, the most recently returned lent first.

    The backend closes what it takes out for good and then calls :meth:`forget`, so a task
    waiting for a connection can open one in its place. With ``retire``, idle connections above
    ``min_size`` are closed (``retire`` is synchronous) after ``idle_s`` unused.
    """

    def __init__(self, backend: str, connect: Callable[[], Awaitable[C]], *, min_size: int,
                 max_size: int, deadlines: Deadlines, alive: Callable[[C], bool],
                 retire: Callable[[C], None] | None = None, idle_s: float = 300.0) -> None:
        self.backend = backend
        self.min_size = min_size
        self.max_size = max_size
        self.closed = False
        self.borrowed: set[C] = set()
        self._connect = connect
        self._deadlines = deadlines
        self._alive = alive
        self._retire = retire
        self._idle_s = idle_s
        self._idle: deque[tuple[C, float]] = deque()  # (connection, when it came back)
        self._open = 0  # open, or being opened
        self._waiters: deque[asyncio.Future[C | None]] = deque()
        self._returned: asyncio.Event | None = None  # set when the last borrowed one is back
        self._retiring: asyncio.TimerHandle | None = None

    @property
    def size(self) -> int:
        """Connections open or being opened, idle or borrowed."""
        return self._open

    async def fill(self) -> None:
        """Open ``min_size`` connections."""
        for _ in range(self.min_size):
            self._open += 1
            try:
                connection = await self._connect()
            except BaseException:
                self._open -= 1
                raise
            self._idle.append((connection, asyncio.get_running_loop().time()))

    async def acquire(self, timeout_s: float) -> C:
        """An idle connection, a new one below ``max_size``, or the next one given back;
        ``TimeoutError`` after ``timeout_s``."""
        if self.closed:
            raise OperationalError(f"the {self.backend} pool is closed", backend=self.backend)
        idle = self._idle
        while idle:
            connection = idle.pop()[0]
            if self._alive(connection):
                self.borrowed.add(connection)
                return connection
            self._open -= 1  # closed while idle (the server ended it): its slot is free
        if self._open < self.max_size:
            self._open += 1
            return await self._new(timeout_s)
        waiter: asyncio.Future[C | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        loop = waiter.get_loop()
        limit = loop.time() + timeout_s
        try:
            handed = await self._deadlines.run(waiter, timeout_s)
        except BaseException:
            if not waiter.done():
                self._waiters.remove(waiter)
            elif not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()  # given to this task just as it gave up: pass it on
                if handed is None:
                    self._forget_slot()
                else:
                    self._hand_over(handed)
            raise
        if handed is None:  # a connection was closed: its slot is this task's to open
            return await self._new(max(limit - loop.time(), 0.0))
        self.borrowed.add(handed)
        return handed

    async def _new(self, timeout_s: float) -> C:
        """Open a connection in a slot already counted in ``_open``."""
        try:
            connection = await self._deadlines.run(self._connect(), timeout_s)
        except BaseException:
            self._forget_slot()
            raise
        self.borrowed.add(connection)
        return connection

    def put_back(self, connection: C) -> None:
        """``connection`` is reusable: to the next waiting task, or to the idle stack."""
        self.borrowed.discard(connection)
        self._hand_over(connection)
        self._check_returned()

    def forget(self, connection: C) -> None:
        """``connection`` is closed (or being closed) by the backend: its slot is free."""
        self.borrowed.discard(connection)
        self._forget_slot()
        self._check_returned()

    def _hand_over(self, connection: C) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        now = asyncio.get_running_loop().time()
        self._idle.append((connection, now))
        if self._retire is not None and self._retiring is None and self._open > self.min_size:
            self._retiring = asyncio.get_running_loop().call_at(now + self._idle_s,
                                                                self._retire_idle)

    def _forget_slot(self) -> None:
        self._open -= 1
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(None)
                return

    def _retire_idle(self) -> None:
        """Close the connections idle for ``idle_s`` while more than ``min_size`` are open."""
        self._retiring = None
        assert self._retire is not None
        loop = asyncio.get_running_loop()
        idle = self._idle
        while idle and self._open > self.min_size and idle[0][1] <= loop.time() - self._idle_s:
            self._open -= 1
            self._retire(idle.popleft()[0])
        if idle and self._open > self.min_size:
            self._retiring = loop.call_at(idle[0][1] + self._idle_s, self._retire_idle)

    def close(self) -> list[C]:
        """Stop lending; returns the idle connections (taken out) for the backend to close.
        Waiting tasks get ``OperationalError``; borrowed ones come back through ``forget``."""
        self.closed = True
        if self._retiring is not None:
            self._retiring.cancel()
            self._retiring = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(OperationalError(f"the {self.backend} pool is closed",
                                                      backend=self.backend))
        idle = [connection for connection, _ in self._idle]
        self._open -= len(idle)
        self._idle.clear()
        return idle

    async def returned(self) -> None:
        """Wait until no connection is borrowed."""
        if self.borrowed:
            self._returned = asyncio.Event()
            await self._returned.wait()

    def _check_returned(self) -> None:
        if self._returned is not None and not self.borrowed:
            self._returned.set()
