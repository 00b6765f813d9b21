"""Every deadline of the database layer, in one place.

A fault (a server that accepts TCP and never answers, a network partition, a session killed
in the middle of a COPY) must end in a typed error in bounded time, never in a hang. Each
deadline below is enforced by the layer itself with ``asyncio.timeout``, so it holds whatever
the driver does (asyncmy's ``connect_timeout`` stops at the TCP handshake, asyncpg's COPY has no
deadline of its own); when one expires the connection is closed, because its protocol state is
unknown, and the server process behind it is ended.

===================  =========  ============================================================
setting              default    bounds
===================  =========  ============================================================
``connect_s``        10         opening one connection: TCP, TLS, authentication, session
                                setup; twice that for the pool's first ones (a server that
                                never answers ends in ``OperationalError``)
``acquire_s``        10         waiting for a pooled connection, including opening a
                                replacement (``PoolTimeoutError``)
``statement_s``      60         one statement, ``executemany`` or ``COMMIT``: every socket
                                read it waits for (``StatementTimeoutError``)
``copy_s``           300        one ``bulk_insert`` (PostgreSQL COPY, multi-row INSERT)
``cleanup_s``        2          ending the server process of a discarded connection
``close_grace_s``    5          closing the pool waits this long for borrowed connections
``busy_timeout``     5000 ms    SQLite only, URL option: waiting for another process's write
===================  =========  ============================================================

Pass them to ``connect(url, timeouts=Timeouts(statement_s=5))``; ``acquire_timeout_s`` (the
``connect`` option) and ``acquire_timeout`` (the URL option, in seconds) set ``acquire_s``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from opusclip_lib.errors import ConfigurationError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The layer's deadlines in seconds (see the module docstring for what each bounds)."""

    connect_s: float = 10.0
    acquire_s: float = 10.0
    statement_s: float = 60.0
    copy_s: float = 300.0
    cleanup_s: float = 2.0
    close_grace_s: float = 5.0

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if not value > 0:  # also refuses NaN
                raise ConfigurationError(f"Timeouts.{name} must be a positive number of seconds, "
                                 f"got {value!r}")


class Deadline:
    """One running statement's deadline (see :class:`Deadlines`)."""

    __slots__ = ("cancelling", "expired", "task", "when")

    def __init__(self, task: asyncio.Task[object], when: float) -> None:
        self.task = task
        self.when = when
        self.cancelling = task.cancelling()
        self.expired = False


class Deadlines:
    """The deadlines of the statements running on one pool, watched by one timer.

    What ``asyncio.timeout`` does, at a fraction of its cost per statement: it arms and cancels
    a timer for every statement, and the cancelled timers pile up in the event loop's heap. Here
    a statement only notes its deadline; the one timer is armed for the earliest of them, and
    when it fires it cancels the statements past their deadline (``asyncio.timeout``'s way:
    :meth:`end` then takes that cancellation back) and re-arms for the next one. Statements that
    finish in time never touch the timer.
    """

    __slots__ = ("_running", "_timer")

    def __init__(self) -> None:
        self._running: set[Deadline] = set()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, timeout_s: float) -> Deadline:
        """The current task's deadline, ``timeout_s`` from now; pass it to :meth:`end`."""
        task = asyncio.current_task()
        assert task is not None, "a deadline needs a task"
        loop = task.get_loop()
        deadline = Deadline(task, loop.time() + timeout_s)
        self._running.add(deadline)
        timer = self._timer
        if timer is None or deadline.when < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline.when, self._fire, deadline.when)
        return deadline

    def end(self, deadline: Deadline) -> bool:
        """Whether ``deadline`` expired; if it did, its cancellation is taken back (any other
        cancellation of the task stands)."""
        self._running.discard(deadline)
        if deadline.expired:
            deadline.task.uncancel()
            return True
        return False

    async def run(self, operation: Awaitable[T], timeout_s: float) -> T:
        """``await operation``, or ``TimeoutError`` after ``timeout_s``."""
        deadline = self.start(timeout_s)
        try:
            result = await operation
        except asyncio.CancelledError:
            if self.end(deadline) and deadline.task.cancelling() <= deadline.cancelling:
                raise TimeoutError from None
            raise
        except BaseException:
            self.end(deadline)
            raise
        self.end(deadline)
        return result

    def _fire(self, when: float) -> None:
        self._timer = None
        # The loop runs a timer up to its clock's resolution early: ``when`` counts as reached.
        now = max(when, asyncio.get_running_loop().time())
        following: Deadline | None = None
        for deadline in self._running:
            if deadline.when <= now:
                if not deadline.expired:
                    deadline.expired = True
                    deadline.task.cancel()
            elif following is None or deadline.when < following.when:
                following = deadline
        if following is not None:
            self._timer = following.task.get_loop().call_at(following.when, self._fire,
                                                            following.when)
