"""What differs between SQLite, PostgreSQL and MySQL, behind one small interface.

Everything above this layer writes SQL once, with ``?`` placeholders and a handful of
vocabulary words (``backend.now``, ``backend.json_type(...)``, ``backend.skip_locked``); each
backend module subclasses :class:`Backend` and is the only place that knows its driver.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from opusclip_lib.db.errors import DatabaseError
from opusclip_lib.db.timeouts import Deadlines, Timeouts
from opusclip_lib.db.urls import DatabaseURL

Row = dict[str, Any]
Params = Sequence[Any]

_QUOTED_OR_MARK = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|\?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def identifier(name: str) -> str:
    """Table, column and index names are spliced into SQL, so only plain identifiers pass."""
    if not _IDENTIFIER.fullmatch(name):
        raise DatabaseError(f"not a plain SQL identifier: {name!r}")
    return name


def numbered_placeholders(sql: str, mark: str) -> str:
    """Rewrite ``?`` outside quoted text; ``mark`` is formatted with the 1-based position."""
    position = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal position
        if match.group() != "?":
            return match.group()
        position += 1
        return mark.format(position)

    return _QUOTED_OR_MARK.sub(swap, sql)


def rowcount_from_status(status: str) -> int:
    """asyncpg returns a command tag such as ``'UPDATE 3'`` or ``'INSERT 0 1'``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class Backend(ABC):
    """A driver, its pool, its SQL dialect and its error mapping."""

    name: ClassVar[str]
    default_pool: ClassVar[tuple[int, int]]
    # SQL vocabulary used by schema.py and the repositories.
    primary_key: ClassVar[str]
    reference: ClassVar[str]
    double: ClassVar[str]
    timestamp: ClassVar[str]
    now: ClassVar[str]
    table_options: ClassVar[str] = ""
    skip_locked: ClassVar[str] = " FOR UPDATE SKIP LOCKED"
    update_returning: ClassVar[bool] = True
    max_bind_params: ClassVar[int] = 32_000

    def __init__(self, url: DatabaseURL, *, min_size: int, max_size: int,
                 timeouts: Timeouts = Timeouts()) -> None:
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.timeouts = timeouts
        self.deadlines = Deadlines()  # of the statements running on this pool
        self._translated: dict[str, str] = {}

    # --- dialect -----------------------------------------------------------------------------

    def sql(self, text: str) -> str:
        """``text`` with this driver's placeholders (cached: the same statements repeat)."""
        translated = self._translated.get(text)
        if translated is None:
            translated = self._translated[text] = self.translate(text)
        return translated

    def translate(self, text: str) -> str:
        return text

    def json_type(self, column: str) -> str:
        return "TEXT"

    @abstractmethod
    def now_plus(self) -> str:
        """SQL for "now plus ``?`` seconds" (negative to look back)."""

    def upsert_sql(self, table: str, columns: Sequence[str], key: Sequence[str],
                   update: Sequence[str], *, touch: str = "") -> str:
        """INSERT that overwrites ``update`` on a ``key`` conflict (``touch``: extra SQL)."""
        assignments = ", ".join([*(f"{c} = excluded.{c}" for c in update), *filter(None, [touch])])
        return (f"{self.insert_sql(table, columns)} ON CONFLICT ({', '.join(key)}) "
                f"DO UPDATE SET {assignments}")

    @staticmethod
    def insert_sql(table: str, columns: Sequence[str], rows: int = 1) -> str:
        group = "(" + ", ".join("?" * len(columns)) + ")"
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([group] * rows)

    @abstractmethod
    def explain_sql(self, sql: str) -> str:
        """The statement that asks for ``sql``'s plan."""

    @abstractmethod
    def format_plan(self, rows: list[Row]) -> str:
        """The plan rows as readable text."""

    version_sql: ClassVar[str] = "SELECT version()"

    def namespace_url(self, name: str) -> DatabaseURL:
        """URL of a private schema/database ``name`` on the same server (for tests and demos)."""
        raise DatabaseError(f"{self.name} has no server-side namespaces; use a temporary file")

    create_namespace_sql: ClassVar[str] = ""
    drop_namespace_sql: ClassVar[str] = ""
    # First statement of a transaction that must see one consistent snapshot (backups).
    snapshot_sql: ClassVar[str] = ""

    # --- pool --------------------------------------------------------------------------------

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def acquire(self, timeout_s: float) -> Any:
        """A raw driver connection; raise ``TimeoutError`` after ``timeout_s``."""

    @abstractmethod
    async def release(self, raw: Any, *, discard: bool) -> None:
        """Give ``raw`` back; ``discard`` closes it because its state is unknown."""

    @abstractmethod
    def pool_size(self) -> int:
        """Connections currently open (idle + in use)."""

    # --- statements on one raw connection ----------------------------------------------------

    @abstractmethod
    async def execute(self, raw: Any, sql: str, params: Params) -> int: ...

    @abstractmethod
    async def executemany(self, raw: Any, sql: str, rows: Sequence[Params]) -> int: ...

    @abstractmethod
    async def fetch(self, raw: Any, sql: str, params: Params) -> list[Row]: ...

    async def bulk_insert(self, raw: Any, table: str, columns: Sequence[str],
                          rows: Sequence[Params]) -> int:
        """Default bulk path: multi-row ``INSERT ... VALUES (...), (...)`` in large chunks."""
        per_statement = max(1, min(1000, self.max_bind_params // len(columns)))
        full = self.sql(self.insert_sql(table, columns, per_statement))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            sql = full if len(chunk) == per_statement else self.sql(
                self.insert_sql(table, columns, len(chunk)))
            await self.execute(raw, sql, [value for row in chunk for value in row])
        return len(rows)

    async def begin(self, raw: Any) -> None:
        await self.execute(raw, "BEGIN", ())

    async def commit(self, raw: Any) -> None:
        await self.execute(raw, "COMMIT", ())

    async def rollback(self, raw: Any) -> None:
        await self.execute(raw, "ROLLBACK", ())

    @abstractmethod
    def map_error(self, exc: BaseException) -> DatabaseError | None:
        """The typed error for a driver exception, or ``None`` if ``exc`` is not the driver's."""

    # --- maintenance -------------------------------------------------------------------------

    @abstractmethod
    def vacuum_statements(self, tables: Sequence[str]) -> list[str]:
        """Statements that reclaim space and refresh planner statistics (run outside any
        transaction)."""

    # Whether the driver copies the whole database to a file itself (``backup_file``); the
    # others are backed up as JSON lines by :func:`opusclip_lib.db.maintenance.backup`.
    file_backup: ClassVar[bool] = False

    async def backup_file(self, raw: Any, path: Path) -> None:
        """A consistent copy of the database at ``path`` (only where ``file_backup``)."""
        raise NotImplementedError(f"{self.name} has no file backup")
