"""SQLite through aiosqlite: a small pool of connections, WAL, and one writer at a time.

Each aiosqlite connection owns a thread, so a pool of a few lets readers run side by side (WAL
lets them read while a write is in progress). Writes in SQLite are serialized by the file lock
anyway; transactions here take an in-process ``asyncio.Lock`` before ``BEGIN IMMEDIATE``, and
a write outside a transaction takes it for its one statement, so that tasks queue in order
instead of sleeping in SQLite's busy handler. Reads never take it. ``busy_timeout`` still
covers other processes writing the same file.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Coroutine, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from opusclip_lib.db import errors
from opusclip_lib.db.backend import Backend, Params, Row
from opusclip_lib.db.pool import Pool
from opusclip_lib.db.timeouts import Timeouts
from opusclip_lib.db.urls import DatabaseURL
from opusclip_lib.errors import ConfigurationError

T = TypeVar("T")

_CONSTRAINTS: dict[str, type[errors.IntegrityError]] = {
    "SQLITE_CONSTRAINT_UNIQUE": errors.UniqueViolationError,
    "SQLITE_CONSTRAINT_PRIMARYKEY": errors.UniqueViolationError,
    "SQLITE_CONSTRAINT_CHECK": errors.CheckViolationError,
    "SQLITE_CONSTRAINT_FOREIGNKEY": errors.ForeignKeyViolationError,
    "SQLITE_CONSTRAINT_NOTNULL": errors.NotNullViolationError,
}
# Defaults: WAL (readers never wait for the writer) with synchronous=FULL (a commit survives
# power loss, as it does on PostgreSQL and MariaDB). journal_mode=delete is SQLite's own
# default, for file systems without WAL support and for comparisons.
MEMORY = ":memory:"
SYNCHRONOUS = {"off", "normal", "full", "extra"}
JOURNAL_MODES = {"wal", "delete", "truncate", "persist"}
_READ = re.compile(r"\s*(?:SELECT|EXPLAIN)\b", re.IGNORECASE)
_CTE = re.compile(r"\s*WITH\b", re.IGNORECASE)
_DML = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE\s+INTO)\b", re.IGNORECASE)


def may_write(sql: str) -> bool:
    """Whether ``sql`` may write, by its first keyword (a ``WITH`` by the DML words in it).

    Guessing "write" for a read only makes it queue for the write lock; guessing "read" for a
    write would send it to the busy handler, so anything not plainly a read counts as a write.
    """
    if _READ.match(sql):
        return False
    return not _CTE.match(sql) or _DML.search(sql) is not None


async def _execute(raw: aiosqlite.Connection, sql: str, params: Params) -> int:
    cursor = await raw.execute(sql, params)
    count = cursor.rowcount
    await cursor.close()
    return max(count, 0)


async def _executemany(raw: aiosqlite.Connection, sql: str, rows: Sequence[Params]) -> int:
    cursor = await raw.executemany(sql, rows)
    await cursor.close()
    return len(rows)


def _alive(_: aiosqlite.Connection) -> bool:
    return True  # a file does not hang up


def _choice(options: dict[str, str], name: str, default: str, allowed: set[str]) -> str:
    value = options.get(name, default).lower()
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


class SQLiteBackend(Backend):
    name = "sqlite"
    default_pool = (1, 4)
    primary_key = "INTEGER PRIMARY KEY"
    reference = "INTEGER"
    double = "REAL"
    timestamp = "TEXT"
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    skip_locked = ""  # BEGIN IMMEDIATE already makes writers take turns
    max_bind_params = 32_766
    version_sql = "SELECT 'SQLite ' || sqlite_version() AS version"

    def __init__(self, url: DatabaseURL, *, min_size: int, max_size: int,
                 timeouts: Timeouts = Timeouts()) -> None:
        in_memory = url.path == MEMORY
        # Every connection to ":memory:" is a separate database: only one may exist.
        super().__init__(url, min_size=1 if in_memory else min_size,
                         max_size=1 if in_memory else max_size, timeouts=timeouts)
        self.path = url.path
        self.busy_timeout_s = url.number("busy_timeout", 5000) / 1000
        self.synchronous = _choice(url.options, "synchronous", "full", SYNCHRONOUS)
        self.journal_mode = _choice(url.options, "journal_mode", "wal", JOURNAL_MODES)
        self._pool = Pool(self.name, self._connect, min_size=self.min_size,
                          max_size=self.max_size, deadlines=self.deadlines, alive=_alive)
        self._write_lock = asyncio.Lock()
        self._writer: aiosqlite.Connection | None = None
        self._writes: dict[str, bool] = {}  # may_write by statement: the same ones repeat

    def json_type(self, column: str) -> str:
        return f"TEXT CHECK ({column} IS NULL OR json_valid({column}))"

    def now_plus(self) -> str:
        return "strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', ?))"

    def explain_sql(self, sql: str) -> str:
        return f"EXPLAIN QUERY PLAN {sql}"

    def format_plan(self, rows: list[Row]) -> str:
        depth: dict[int, int] = {0: -1}
        lines = []
        for row in rows:
            depth[row["id"]] = depth.get(row["parent"], -1) + 1
            lines.append("  " * depth[row["id"]] + row["detail"])
        return "\n".join(lines)

    # --- pool --------------------------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        raw = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            raw.row_factory = sqlite3.Row
            await raw.executescript(
                (f"PRAGMA journal_mode={self.journal_mode};" if self.path != MEMORY else "")
                + f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)};"
                f"PRAGMA synchronous={self.synchronous};"
                "PRAGMA foreign_keys=ON;")
        except BaseException:
            await raw.close()
            raise
        return raw

    async def open(self) -> None:
        try:
            await self._pool.fill()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for raw in self._pool.close():
            await raw.close()

    async def acquire(self, timeout_s: float) -> aiosqlite.Connection:
        return await self._pool.acquire(timeout_s)

    async def release(self, raw: aiosqlite.Connection, *, discard: bool) -> None:
        if self._writer is raw:  # still in a transaction: closing it rolls the transaction back
            self._release_write_lock()
            discard = True
        if not discard and not self._pool.closed:
            self._pool.put_back(raw)
            return
        self._pool.forget(raw)
        if discard:
            with suppress(ValueError):  # ValueError: already closed
                await raw.interrupt()  # stop a statement still running in its thread
        await raw.close()

    def pool_size(self) -> int:
        return self._pool.size

    # --- statements --------------------------------------------------------------------------

    async def execute(self, raw: aiosqlite.Connection, sql: str, params: Params) -> int:
        return await self._in_turn(raw, sql, _execute(raw, sql, params))

    async def executemany(self, raw: aiosqlite.Connection, sql: str,
                          rows: Sequence[Params]) -> int:
        return await self._in_turn(raw, sql, _executemany(raw, sql, rows))

    async def fetch(self, raw: aiosqlite.Connection, sql: str, params: Params) -> list[Row]:
        # One trip to the connection's thread, as a raw execute_fetchall.
        rows = await self._in_turn(raw, sql, raw.execute_fetchall(sql, params))
        return [dict(row) for row in rows]

    def _in_turn(self, raw: aiosqlite.Connection, sql: str,
                 statement: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """``statement`` to await; a write outside a transaction holds the write lock while it
        runs (a write inside one, or a read, is awaited as it is: no coroutine around it)."""
        if self._writer is raw:
            return statement
        writes = self._writes.get(sql)
        if writes is None:
            writes = self._writes[sql] = may_write(sql)
        return self._locked(statement) if writes else statement

    async def _locked(self, statement: Coroutine[Any, Any, T]) -> T:
        try:
            await self._take_write_lock()
        except BaseException:
            statement.close()  # never started
            raise
        try:
            return await statement
        finally:
            self._write_lock.release()

    async def _take_write_lock(self) -> None:
        try:
            async with asyncio.timeout(self.busy_timeout_s):
                await self._write_lock.acquire()
        except TimeoutError:
            raise errors.LockTimeoutError(
                f"waited {self.busy_timeout_s:g} s for the SQLite write lock (another write in "
                "this process is still running; does a task write outside the transaction it "
                "holds?)", backend=self.name) from None

    async def begin(self, raw: aiosqlite.Connection) -> None:
        await self._take_write_lock()
        self._writer = raw
        try:
            await self.execute(raw, "BEGIN IMMEDIATE", ())
        except BaseException:
            self._release_write_lock()
            raise

    async def commit(self, raw: aiosqlite.Connection) -> None:
        await self.execute(raw, "COMMIT", ())  # on failure the caller rolls back
        self._release_write_lock()

    async def rollback(self, raw: aiosqlite.Connection) -> None:
        try:
            await self.execute(raw, "ROLLBACK", ())
        finally:
            self._release_write_lock()

    def _release_write_lock(self) -> None:
        if self._writer is not None:
            self._writer = None
            self._write_lock.release()

    def map_error(self, exc: BaseException) -> errors.DatabaseError | None:
        message = f"{exc} (sqlite)"
        if isinstance(exc, sqlite3.IntegrityError):
            kind = _CONSTRAINTS.get(getattr(exc, "sqlite_errorname", ""), errors.IntegrityError)
            constraint = str(exc).partition(": ")[2] or None
            return kind(message, backend=self.name, constraint=constraint)
        if isinstance(exc, sqlite3.OperationalError):
            name = getattr(exc, "sqlite_errorname", "")
            if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
                return errors.LockTimeoutError(message, backend=self.name)
            if name == "SQLITE_ERROR":
                return errors.QueryError(message, backend=self.name)
            return errors.OperationalError(message, backend=self.name)
        if isinstance(exc, sqlite3.ProgrammingError):
            if "closed" in str(exc):
                return errors.ConnectionLostError.of(self.name, exc)
            return errors.QueryError(message, backend=self.name)
        if isinstance(exc, sqlite3.Error):
            return errors.DatabaseError(message, backend=self.name)
        if isinstance(exc, ValueError) and "no active connection" in str(exc):
            return errors.ConnectionLostError.of(self.name, exc)
        return None

    # --- maintenance -------------------------------------------------------------------------

    def vacuum_statements(self, tables: Sequence[str]) -> list[str]:
        return ["VACUUM", *(f"ANALYZE {table}" for table in tables)]

    file_backup = True

    async def backup_file(self, raw: aiosqlite.Connection, path: Path) -> None:
        """SQLite's online backup API: a consistent copy while other tasks keep writing."""
        target = sqlite3.connect(path, check_same_thread=False)
        try:
            await raw.backup(target, pages=1024, sleep=0)
        finally:
            target.close()
