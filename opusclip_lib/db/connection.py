"""One pooled connection, used by one task at a time: timed statements and nested transactions.

Every statement goes through :meth:`Connection._timed`, which is the single place that times it
into the recorder, maps driver errors to :mod:`opusclip_lib.db.errors`, and marks the
connection *broken* when its state is unknown (cancelled mid-statement, connection lost), so
the pool closes it instead of handing a half-finished transaction to the next task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from opusclip_lib.db.backend import Backend, Params, Row
from opusclip_lib.db.errors import (
    ConnectionSharedError,
    DatabaseError,
    LockTimeoutError,
    OperationalError,
    StatementTimeoutError,
)
from opusclip_lib.observability.instrument import query_end, query_start

if TYPE_CHECKING:
    from opusclip_lib.metrics import Recorder

T = TypeVar("T")


def _default_name(sql: str) -> str:
    """``INSERT INTO videos ...`` -> ``insert videos``: good enough to group timings by."""
    words = sql.split(None, 4)
    verb = words[0].lower() if words else "?"
    for index, word in enumerate(words[:-1]):
        if word.upper() in {"INTO", "FROM", "UPDATE", "TABLE"}:
            return f"{verb} {words[index + 1].lower()}"
    return verb



def stop_if_cancelled() -> None:
    """Raise ``CancelledError`` if this task's cancellation was kept, not raised: one that came
    too late for finished work (a ``COMMIT`` that went through, a connection on its way back to
    the pool). A loop that polls the database in a background task calls it after each round,
    or it would poll on forever with its cancellation spent."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Executor(Protocol):
    """What repository functions take: a ``Database`` (autocommit) or a ``Connection``."""

    @property
    def backend(self) -> Backend: ...

    async def execute(self, sql: str, params: Params = (), *, name: str | None = None) -> int: ...

    async def executemany(self, sql: str, rows: Sequence[Params], *,
                          name: str | None = None) -> int: ...

    async def fetch(self, sql: str, params: Params = (), *,
                    name: str | None = None) -> list[Row]: ...

    async def fetchrow(self, sql: str, params: Params = (), *,
                       name: str | None = None) -> Row | None: ...

    async def fetchval(self, sql: str, params: Params = (), *, name: str | None = None) -> Any: ...

    async def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Params], *,
                          name: str | None = None) -> int: ...

    def transaction(self) -> AbstractAsyncContextManager[Connection]: ...


class Connection:
    """A driver connection on loan from the pool; never share one between concurrent tasks."""

    __slots__ = ("_depth", "_owner", "_recorder", "backend", "broken", "raw")

    def __init__(self, backend: Backend, raw: Any, recorder: Recorder) -> None:
        self.backend = backend
        self.raw = raw
        self.broken = False
        self._recorder = recorder
        self._depth = 0
        self._owner = asyncio.current_task()

    def _check_owner(self, name: str) -> None:
        """A task that does not own the connection is refused before anything is sent."""
        if asyncio.current_task() is not self._owner:
            raise ConnectionSharedError(
                f"{name!r} on a connection acquired by another task: concurrent tasks must each "
                "use their own (db.acquire() / db.transaction() / the Database itself)",
                backend=self.backend.name)

    async def _timed(self, name: str, operation: Awaitable[T], count: Callable[[T], int],
                     timeout_s: float, sql: str = "") -> T:
        """Await ``operation`` under its deadline, timed, with driver errors mapped."""
        recorder, backend = self._recorder, self.backend
        start = recorder.now()
        traced = query_start(backend.name, name, sql)
        deadlines = backend.deadlines
        deadline = deadlines.start(timeout_s)
        try:
            result = await operation
        except BaseException as exc:
            expired = deadlines.end(deadline)
            error = backend.map_error(exc)
            if expired:
                error = StatementTimeoutError(
                    f"{name!r}: no answer from {backend.name} within {timeout_s:g} s (a hung "
                    "server or a partition); the connection is closed, so the server rolls back "
                    "its transaction", backend=backend.name)
            query_end(traced, error or exc)
            if error is None or (isinstance(error, OperationalError)
                                 and not isinstance(error, LockTimeoutError)):
                self.broken = True
            recorder.add("query", name, start=start, seconds=recorder.now() - start, ok=False,
                         error=type(error or exc).__name__, backend=backend.name, rows=0)
            if error is None:
                raise
            raise error from exc
        deadlines.end(deadline)
        query_end(traced, None)
        recorder.add("query", name, start=start, seconds=recorder.now() - start,
                     backend=backend.name, rows=count(result))
        return result

    async def execute(self, sql: str, params: Params = (), *, name: str | None = None) -> int:
        """Run one statement; returns the rows it changed."""
        name = name or _default_name(sql)
        self._check_owner(name)
        backend = self.backend
        return await self._timed(name, backend.execute(self.raw, backend.sql(sql), params), int,
                                 backend.timeouts.statement_s, sql)

    async def executemany(self, sql: str, rows: Sequence[Params], *,
                          name: str | None = None) -> int:
        """One statement, many parameter rows (the driver's batch path); returns rows sent."""
        name = name or _default_name(sql)
        self._check_owner(name)
        if not rows:
            return 0
        backend = self.backend
        return await self._timed(name, backend.executemany(self.raw, backend.sql(sql), rows),
                                 int, backend.timeouts.statement_s, sql)

    async def fetch(self, sql: str, params: Params = (), *, name: str | None = None) -> list[Row]:
        name = name or _default_name(sql)
        self._check_owner(name)
        backend = self.backend
        return await self._timed(name, backend.fetch(self.raw, backend.sql(sql), params), len,
                                 backend.timeouts.statement_s, sql)

    async def fetchrow(self, sql: str, params: Params = (), *,
                       name: str | None = None) -> Row | None:
        rows = await self.fetch(sql, params, name=name)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Params = (), *, name: str | None = None) -> Any:
        row = await self.fetchrow(sql, params, name=name)
        return next(iter(row.values())) if row else None

    async def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Params], *,
                          name: str | None = None) -> int:
        """The fastest load path of the backend (COPY, multi-row INSERT); returns rows loaded."""
        name = name or f"bulk {table}"
        self._check_owner(name)
        if not rows:
            return 0
        backend = self.backend
        return await self._timed(name, backend.bulk_insert(self.raw, table, columns, rows), int,
                                 backend.timeouts.copy_s)

    async def run_driver(self, name: str, operation: Callable[[Any], Awaitable[T]]) -> T:
        """``operation(driver connection)`` timed, under the statement deadline, with errors
        mapped, as a statement is: for what a driver offers besides SQL (SQLite's backup)."""
        self._check_owner(name)
        return await self._timed(name, operation(self.raw), _zero,
                                 self.backend.timeouts.statement_s)

    @property
    def in_transaction(self) -> bool:
        """Whether a ``transaction()`` block of this connection is open."""
        return self._depth > 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """``BEGIN``/``COMMIT``, or a ``SAVEPOINT`` when already inside a transaction.

        What the caller can know afterwards:

        * the block exits normally: everything in it is committed;
        * any exception out of the block, cancellation included: it was rolled back, nothing in
          it is stored. A rollback that cannot run marks the connection broken; the pool then
          closes it, and the server discards the open transaction with the connection;
        * a cancellation that arrives while ``COMMIT`` is in flight waits for the commit (at
          most ``statement_s``), since only its answer tells what happened. If it committed, the
          block exits normally: the cancellation came too late, and the task keeps the request
          (``asyncio.current_task().cancelling()`` stays above zero; a loop that must stop on
          cancellation checks it: :func:`stop_if_cancelled`). If it did not commit,
          ``CancelledError`` is raised;
        * ``ConnectionLostError`` or ``StatementTimeoutError`` raised by ``COMMIT`` itself: the
          server may or may not have committed. Read back (an idempotency key makes that easy)
          before retrying.
        """
        depth = self._depth
        if depth == 0:
            self._check_owner("BEGIN")
            await self._timed("BEGIN", self.backend.begin(self.raw), _zero,
                              self.backend.timeouts.statement_s)
        else:
            await self.execute(f"SAVEPOINT sp_{depth}", name="SAVEPOINT")
        self._depth = depth + 1
        try:
            yield self
        except BaseException:
            self._depth = depth
            await self._undo(depth)
            raise
        self._depth = depth
        if depth:
            await self.execute(f"RELEASE SAVEPOINT sp_{depth}", name="RELEASE")
            return
        await self._commit()

    async def _commit(self) -> None:
        """``COMMIT`` in a task of its own that a cancellation cannot interrupt halfway."""
        self._check_owner("COMMIT")
        commit = asyncio.ensure_future(self._timed(
            "COMMIT", self.backend.commit(self.raw), _zero, self.backend.timeouts.statement_s))
        cancelled: asyncio.CancelledError | None = None
        while not commit.done():
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError as exc:
                cancelled = cancelled or exc
            except Exception:  # noqa: BLE001 - read below, once the task is done
                pass
        failure = commit.exception()
        if failure is None:
            return
        await self._undo(0)
        raise cancelled or failure

    async def _undo(self, depth: int) -> None:
        if self.broken:
            return
        try:
            if depth:
                await self.execute(f"ROLLBACK TO SAVEPOINT sp_{depth}", name="ROLLBACK TO")
            else:
                self._check_owner("ROLLBACK")
                await self._timed("ROLLBACK", self.backend.rollback(self.raw), _zero,
                                  self.backend.timeouts.statement_s)
        except DatabaseError:
            self.broken = True


def _zero(_: object) -> int:
    return 0
