"""MariaDB/MySQL errors arrive as the same typed errors as on the other backends (real servers).

DDL that does not fit the schema (a migration run twice) is a ``QueryError`` on MariaDB as on
PostgreSQL, and a closed pool is an ``OperationalError`` saying so on every backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from opusclip_lib.db import Database, OperationalError, QueryError, connect
from opusclip_lib.db.maintenance import health
from tests.waiting import until

PROBE = "ddl_probe"
CREATE_PROBE = f"CREATE TABLE {PROBE} (id INTEGER PRIMARY KEY, number INTEGER)"


@pytest.fixture(params=["postgres", "mysql"])
async def server_db(request: pytest.FixtureRequest,
                    scratch_namespaces: Callable[[str], str]) -> AsyncIterator[Database]:
    """A scratch database on a real server holding the table ``ddl_probe``."""
    url = scratch_namespaces(request.getfixturevalue(f"{request.param}_url"))
    async with connect(url, min_size=1, max_size=2) as database:
        await database.execute(f"DROP TABLE IF EXISTS {PROBE}")
        await database.execute(CREATE_PROBE)
        try:
            yield database
        finally:
            await database.execute(f"DROP TABLE {PROBE}")


@pytest.mark.parametrize(("statement", "mysql_code"), [
    (CREATE_PROBE, 1050),
    (f"ALTER TABLE {PROBE} ADD COLUMN number INTEGER", 1060),
    (f"CREATE INDEX {PROBE}_id_idx ON {PROBE} (id)", 1061),
    (f"ALTER TABLE {PROBE} DROP COLUMN missing", 1091),
])
async def test_ddl_that_does_not_fit_the_schema_is_a_query_error(
        server_db: Database, statement: str, mysql_code: int) -> None:
    if "INDEX" in statement:
        await server_db.execute(statement)  # the second one collides

    with pytest.raises(QueryError) as raised:
        await server_db.execute(statement)

    if server_db.name == "mysql":
        assert f"[mysql {mysql_code}]" in str(raised.value)
    assert await server_db.fetchval(f"SELECT count(*) FROM {PROBE}") == 0  # still usable


async def test_health_after_close_reports_the_closed_pool(db_url: str) -> None:
    async with connect(db_url, min_size=1, max_size=2) as db:
        assert (await health(db)).ok

    report = await health(db)

    assert not report.ok
    assert report.error is not None
    assert report.error.startswith("OperationalError:")
    assert "pool is closed" in report.error
    with pytest.raises(OperationalError, match="pool is closed"):
        await db.fetchval("SELECT 1")


async def test_a_task_waiting_for_a_connection_when_the_pool_closes(
        mysql_url: str, scratch_namespaces: Callable[[str], str]) -> None:
    async with connect(scratch_namespaces(mysql_url), min_size=1, max_size=1) as db:
        async with db.acquire():
            waiting = asyncio.create_task(db.fetchval("SELECT 1"))
            await until(lambda: db.pool_stats().waiting == 1)  # parked behind the one held here
            closing = asyncio.create_task(db.backend.close())
            await asyncio.sleep(0)  # the pool is marked closed before close() waits
        with pytest.raises(OperationalError, match="pool is closed"):
            await waiting
        await closing
