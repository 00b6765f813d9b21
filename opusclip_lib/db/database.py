"""The pool-owning :class:`Database` that ``connect(url)`` returns."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from opusclip_lib.config import database_url
from opusclip_lib.db.backend import Backend, Params, Row
from opusclip_lib.db.connection import Connection
from opusclip_lib.db.errors import (
    ConnectionLostError,
    DatabaseError,
    OperationalError,
    PoolTimeoutError,
)
from opusclip_lib.db.schema import migrate
from opusclip_lib.db.timeouts import Timeouts
from opusclip_lib.db.urls import DatabaseURL, parse_url
from opusclip_lib.metrics import Recorder

BACKENDS = {
    "sqlite": "opusclip_lib.db.sqlite:SQLiteBackend",
    "postgresql": "opusclip_lib.db.postgres:PostgresBackend",
    "mysql": "opusclip_lib.db.mysql:MySQLBackend",
}


def backend_class(name: str) -> type[Backend]:
    """Imported on first use, so SQLite users never import asyncpg or asyncmy."""
    module, _, attribute = BACKENDS[name].partition(":")
    backend: type[Backend] = getattr(importlib.import_module(module), attribute)
    return backend


@dataclass(frozen=True, slots=True)
class PoolStats:
    size: int
    in_use: int
    waiting: int
    min_size: int
    max_size: int


class Database:
    """A connection pool plus the recorder its statements are timed into.

    Use as ``async with connect(url) as db:``. ``db.execute``/``fetch``/... borrow a connection
    for one autocommitted statement; ``db.transaction()`` lends one for a block of statements;
    ``db.acquire()`` lends one without a transaction.
    """

    def __init__(self, url: str | DatabaseURL | None = None, *, recorder: Recorder | None = None,
                 min_size: int | None = None, max_size: int | None = None,
                 acquire_timeout_s: float | None = None, timeouts: Timeouts | None = None,
                 migrate: bool = True) -> None:
        self.url = url if isinstance(url, DatabaseURL) else parse_url(url or database_url())
        cls = backend_class(self.url.backend)
        default_min, default_max = cls.default_pool
        max_size = max_size or int(self.url.number("max_size", default_max))
        min_size = min(max_size, min_size if min_size is not None
                       else int(self.url.number("min_size", default_min)))
        timeouts = timeouts or Timeouts()
        acquire_s = acquire_timeout_s or self.url.number("acquire_timeout", timeouts.acquire_s)
        self.timeouts = replace(timeouts, acquire_s=acquire_s)
        self.backend: Backend = cls(self.url, min_size=min_size, max_size=max_size,
                                    timeouts=self.timeouts)
        self.recorder = recorder if recorder is not None else Recorder()
        self._migrate = migrate
        self._in_use = 0
        self._waiting = 0

    @property
    def name(self) -> str:
        """``"sqlite"``, ``"postgresql"`` or ``"mysql"``."""
        return self.backend.name

    async def __aenter__(self) -> Database:
        connect_s = self.timeouts.connect_s
        try:
            # Each connection has connect_s to open; this bounds the pool's opening as a whole
            # (drivers open its first connections one or two at a time).
            async with asyncio.timeout(2 * connect_s):
                await self.backend.open()
        except Exception as exc:
            mapped = exc if isinstance(exc, DatabaseError) else self.backend.map_error(exc)
            lost = mapped is None or isinstance(mapped, ConnectionLostError)
            detail = repr(exc) if lost else mapped
            if isinstance(exc, TimeoutError) and mapped is None:
                detail = f"no answer within connect_s={connect_s:g} s"
            raise OperationalError(f"cannot open a {self.name} pool for {self.url}: {detail}",
                                   backend=self.name) from exc
        if self._migrate:
            try:
                await migrate(self)
            except BaseException:
                await self.backend.close()
                raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.backend.close()

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        """Borrow a connection for this task alone; it goes back (or is closed if broken) after."""
        connection = await self._borrow()
        try:
            yield connection
        except BaseException:
            await self._give_back(connection)
            raise
        await self._give_back_done(connection)

    async def _borrow(self) -> Connection:
        self._waiting += 1
        try:
            raw = await self.backend.acquire(self.timeouts.acquire_s)
        except TimeoutError:
            raise PoolTimeoutError(
                f"no {self.name} connection free within {self.timeouts.acquire_s:g} s "
                f"(pool max_size={self.backend.max_size}, {self._in_use} in use)",
                backend=self.name) from None
        except Exception as exc:  # opening a replacement connection failed
            mapped = self.backend.map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            self._waiting -= 1
        self._in_use += 1
        return Connection(self.backend, raw, self.recorder)

    async def _give_back(self, connection: Connection) -> None:
        """Return ``connection`` to the pool (closed there if broken) after a failure."""
        self._in_use -= 1
        await self.backend.release(connection.raw, discard=connection.broken)

    async def _give_back_done(self, connection: Connection) -> None:
        """Return ``connection`` after its work finished: a cancellation this late must not
        report the work (committed, for a transaction) as undone. The task keeps the request
        (see Connection.transaction), and the drivers finish the release on their own."""
        self._in_use -= 1
        with suppress(asyncio.CancelledError):
            await self.backend.release(connection.raw, discard=connection.broken)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection inside ``BEGIN ... COMMIT``; an exception rolls everything back (what
        the caller knows after a fault or a cancellation: ``Connection.transaction``)."""
        async with self.acquire() as connection, connection.transaction():
            yield connection

    async def execute(self, sql: str, params: Params = (), *, name: str | None = None) -> int:
        connection = await self._borrow()
        try:
            result = await connection.execute(sql, params, name=name)
        except BaseException:
            await self._give_back(connection)
            raise
        await self._give_back_done(connection)
        return result

    async def executemany(self, sql: str, rows: Sequence[Params], *,
                          name: str | None = None) -> int:
        """All rows or none: runs in its own transaction."""
        async with self.transaction() as connection:
            return await connection.executemany(sql, rows, name=name)

    async def fetch(self, sql: str, params: Params = (), *, name: str | None = None) -> list[Row]:
        # The path of every single-row read and ``INSERT ... RETURNING``: borrowing directly
        # instead of through ``acquire()`` saves a generator-based context manager per statement.
        connection = await self._borrow()
        try:
            rows = await connection.fetch(sql, params, name=name)
        except BaseException:
            await self._give_back(connection)
            raise
        await self._give_back_done(connection)
        return rows

    async def fetchrow(self, sql: str, params: Params = (), *,
                       name: str | None = None) -> Row | None:
        rows = await self.fetch(sql, params, name=name)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, params: Params = (), *, name: str | None = None) -> Any:
        row = await self.fetchrow(sql, params, name=name)
        return next(iter(row.values())) if row else None

    async def bulk_insert(self, table: str, columns: Sequence[str], rows: Sequence[Params], *,
                          name: str | None = None) -> int:
        """All rows or none: runs in its own transaction."""
        async with self.transaction() as connection:
            return await connection.bulk_insert(table, columns, rows, name=name)

    def pool_stats(self) -> PoolStats:
        return PoolStats(size=self.backend.pool_size(), in_use=self._in_use,
                         waiting=self._waiting, min_size=self.backend.min_size,
                         max_size=self.backend.max_size)

    @asynccontextmanager
    async def sample_pool(self, interval_s: float = 0.05) -> AsyncIterator[None]:
        """Record pool usage (``kind="pool"``) every ``interval_s`` while the block runs."""

        async def sample() -> None:
            while True:
                stats = self.pool_stats()
                self.recorder.add("pool", self.name, seconds=0.0, backend=self.name,
                                  in_use=stats.in_use, size=stats.size, waiting=stats.waiting,
                                  max_size=stats.max_size)
                await asyncio.sleep(interval_s)

        task = asyncio.create_task(sample(), name=f"pool sampler ({self.name})")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def connect(url: str | DatabaseURL | None = None, **options: Any) -> Database:
    """``async with connect(url) as db:`` -- pool opened and schema migrated on entry.

    ``url`` defaults to :func:`opusclip_lib.config.database_url`. Options: ``recorder``,
    ``min_size``, ``max_size``, ``acquire_timeout_s``, ``timeouts``
    (:class:`~opusclip_lib.db.timeouts.Timeouts`: every deadline, documented there),
    ``migrate`` (default ``True``).
    """
    return Database(url, **options)
