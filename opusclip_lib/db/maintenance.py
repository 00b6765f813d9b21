"""Operations a demo or an operator needs: plans, housekeeping, backups, health, indexes,
and private scratch schemas so parallel runs never collide."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from opusclip_lib.db.backend import Params, identifier
from opusclip_lib.db.connection import Connection, Executor
from opusclip_lib.db.database import Database, PoolStats, connect
from opusclip_lib.db.errors import DatabaseError
from opusclip_lib.db.schema import TABLES, schema_version
from opusclip_lib.db.urls import parse_url

EXPORT_CHUNK = 5000


async def explain(ex: Executor, sql: str, params: Params = ()) -> str:
    """The planner's plan for ``sql`` (``?`` placeholders) as text, in the backend's own words."""
    rows = await ex.fetch(ex.backend.explain_sql(sql), params, name="explain")
    return ex.backend.format_plan(rows)


async def vacuum(db: Database, tables: Iterable[str] = TABLES) -> None:
    """Reclaim space and refresh statistics (VACUUM/ANALYZE, OPTIMIZE TABLE); outside any
    transaction, as the servers require."""
    async with db.acquire() as conn:
        for statement in db.backend.vacuum_statements([identifier(t) for t in tables]):
            await conn.execute(statement, name=statement.split(None, 1)[0])


async def backup(db: Database, path: str | Path) -> Path:
    """SQLite: a consistent copy of the database file via the online backup API.
    PostgreSQL / MySQL: every table as JSON lines (first line a header, then one
    ``{"table": ..., "row": {...}}`` per row) read in one snapshot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = db.backend
    async with db.acquire() as conn:
        if backend.file_backup:
            await conn.run_driver("backup", lambda raw: backend.backup_file(raw, path))
            return path
        return await export_json_lines(conn, ("schema_version", *reversed(TABLES)), path)


def _json_default(value: object) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


async def export_json_lines(conn: Connection, tables: Sequence[str], path: Path) -> Path:
    """Tables in parent-first order, read in chunks by primary key inside one snapshot."""
    async with conn.transaction():
        if conn.backend.snapshot_sql:
            await conn.execute(conn.backend.snapshot_sql, name="snapshot")
        with path.open("w", encoding="utf-8") as out:
            header = {"format": "opusclip-backup", "backend": conn.backend.name,
                      "tables": list(tables)}
            out.write(json.dumps(header) + "\n")
            for table in tables:
                key = "version" if table == "schema_version" else "id"
                last = None
                while True:
                    after = "" if last is None else f" WHERE {key} > ?"
                    rows = await conn.fetch(
                        f"SELECT * FROM {table}{after} ORDER BY {key} LIMIT ?",
                        (*(() if last is None else (last,)), EXPORT_CHUNK), name="backup")
                    if not rows:
                        break
                    lines = [json.dumps({"table": table, "row": row}, default=_json_default)
                             + "\n" for row in rows]
                    await asyncio.to_thread(out.writelines, lines)
                    last = rows[-1][key]
    return path


@dataclass(frozen=True, slots=True)
class Health:
    backend: str
    ok: bool
    ping_ms: float
    version: str
    schema_version: int
    pool: PoolStats
    error: str | None = None


async def health(db: Database) -> Health:
    """Ping latency, server version, schema version and pool usage; never raises on a DB error."""
    start = time.perf_counter()
    try:
        await db.fetchval("SELECT 1", name="ping")
        ping_ms = (time.perf_counter() - start) * 1000
        version = str(await db.fetchval(db.backend.version_sql, name="version"))
        current = await schema_version(db)
    except DatabaseError as exc:
        return Health(db.name, False, (time.perf_counter() - start) * 1000, "", 0,
                      db.pool_stats(), f"{type(exc).__name__}: {exc}")
    return Health(db.name, True, round(ping_ms, 3), version, current, db.pool_stats())


async def create_index(ex: Executor, table: str, columns: Sequence[str], *,
                       unique: bool = False, name: str | None = None) -> str:
    """``CREATE [UNIQUE] INDEX IF NOT EXISTS``; returns the index name."""
    columns = [identifier(c) for c in columns]
    name = identifier(name or f"{table}_{'_'.join(columns)}_idx"[:63])
    await ex.execute(f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {name} "
                     f"ON {identifier(table)} ({', '.join(columns)})", name="create index")
    return name


@asynccontextmanager
async def scratch_database(url: str, *, prefix: str = "opusclip_scratch") -> AsyncIterator[str]:
    """A private, migrated PostgreSQL schema or MySQL database on ``url``'s server, dropped on
    exit; yields its URL. Lets tests and notebooks run side by side on one server."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    scratch = await create_scratch(url, name)
    try:
        yield scratch
    finally:
        await drop_scratch(url, name)


async def create_scratch(url: str, name: str) -> str:
    async with connect(url, migrate=False, min_size=1, max_size=1) as admin:
        await admin.execute(admin.backend.create_namespace_sql.format(identifier(name)),
                            name="create scratch")
        scratch = admin.backend.namespace_url(name)
    async with connect(scratch, min_size=1, max_size=1):  # migrates
        pass
    return scratch.render(hide_password=False)


async def drop_scratch(url: str, name: str) -> None:
    async with connect(parse_url(url), migrate=False, min_size=1, max_size=1) as admin:
        await admin.execute(admin.backend.drop_namespace_sql.format(identifier(name)),
                            name="drop scratch")
