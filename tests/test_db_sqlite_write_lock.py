"""SQLite writes outside a transaction queue for the in-process write lock, as transactions do.

The tests switch SQLite's busy handler off (``PRAGMA busy_timeout = 0``) on every pooled
connection: a write that would have slept in it fails at once with ``LockTimeoutError`` instead, so
"no write waits in the busy handler" becomes "every write succeeds".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from opusclip_lib.db import Database, connect, videos
from opusclip_lib.db.sqlite import may_write

POOL_SIZE = 4
WRITES = 120


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A file database whose pooled connections never wait in SQLite's busy handler."""
    url = f"sqlite:///{tmp_path}/test.db?busy_timeout=2000"
    async with connect(url, min_size=POOL_SIZE, max_size=POOL_SIZE) as database:
        async with AsyncExitStack() as stack:
            connections = [await stack.enter_async_context(database.acquire())
                           for _ in range(POOL_SIZE)]
            for connection in connections:
                await connection.execute("PRAGMA busy_timeout = 0")
        yield database


def youtube_id(number: int) -> str:
    return f"vid{number:08d}"


async def test_concurrent_autocommit_writes_take_turns_instead_of_failing_busy(
        db: Database) -> None:
    inserted = await asyncio.gather(*(videos.insert_video(db, youtube_id(n))
                                      for n in range(WRITES)))
    updated = await asyncio.gather(
        *(db.execute("UPDATE videos SET status = 'queued' WHERE id = ?", (video.id,))
          for video in inserted),
        *(db.fetchval("SELECT count(*) FROM videos") for _ in range(WRITES // 4)))

    assert updated[:WRITES] == [1] * WRITES
    assert await videos.count_videos(db, status="queued") == WRITES


async def test_an_autocommit_write_waits_for_an_open_transaction(db: Database) -> None:
    video = await videos.insert_video(db, youtube_id(1))
    transaction_open = asyncio.Event()

    async def slow_transaction() -> None:
        async with db.transaction() as tx:
            await tx.execute("UPDATE videos SET title = 'first' WHERE id = ?", (video.id,))
            transaction_open.set()
            await asyncio.sleep(0.2)

    async def autocommit_write() -> int:
        await transaction_open.wait()
        return await db.execute("UPDATE videos SET title = 'second' WHERE id = ?", (video.id,))

    _, changed = await asyncio.gather(slow_transaction(), autocommit_write())

    assert changed == 1
    assert (await videos.get_video(db, video.id)).title == "second"


async def test_reads_do_not_wait_for_the_write_lock(db: Database) -> None:
    # Reading while this task's own transaction holds the lock would time out if reads took it.
    await videos.insert_video(db, youtube_id(1))
    async with db.transaction() as tx:
        await videos.insert_video(tx, youtube_id(2))
        count = await db.fetchval("SELECT count(*) FROM videos")
        with_count = await db.fetchval("WITH v AS (SELECT id FROM videos) SELECT count(*) FROM v")
        listed = await videos.list_videos(db)

    assert (count, with_count, len(listed)) == (1, 1, 1)


@pytest.mark.parametrize(("sql", "writes"), [
    ("SELECT * FROM videos", False),
    ("  select 1", False),
    ("EXPLAIN QUERY PLAN UPDATE videos SET title = 'x'", False),
    ("WITH v AS (SELECT id FROM videos) SELECT * FROM v", False),
    ("WITH due AS MATERIALIZED (SELECT id FROM jobs) UPDATE jobs SET status = 'x'", True),
    ("INSERT INTO videos (youtube_id) VALUES (?) RETURNING *", True),
    ("REPLACE INTO videos (youtube_id) VALUES (?)", True),
    ("DELETE FROM videos", True),
    ("CREATE TABLE t (x INTEGER)", True),
    ("VACUUM", True),
    ("PRAGMA user_version = 3", True),
])
def test_may_write(sql: str, writes: bool) -> None:
    assert may_write(sql) is writes
