"""Solutions to the exercises of notebooks/12_db_transactions.ipynb.

Run: .venv/bin/python notebooks/solutions/12_db_transactions_solutions.py
Like the notebook, it uses the database in OPUSCLIP_DATABASE_URL (default: a SQLite file in
work/) and drops and recreates its tables first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

from opusclip_lib.db import (
    Connection,
    Database,
    OperationalError,
    clear,
    clips,
    connect,
    jobs,
    reset,
    videos,
)

READ = "SELECT attempts FROM processing_jobs WHERE id = ?"
WRITE = "UPDATE processing_jobs SET attempts = ? WHERE id = ?"


class InjectedFailure(Exception):
    """A crash between two steps of the unit of work."""


class Conflict(Exception):
    """The row changed between our read and our conditional write."""


async def merge(db: Database, keep_id: int, drop_id: int, *, fail_between: bool = False) -> None:
    """Move ``drop_id``'s clips to ``keep_id`` and delete ``drop_id``: both or neither."""
    async with db.transaction() as tx:
        moving = await clips.list_clips(tx, drop_id, limit=10_000)
        await clips.update_clips(tx, [{"id": clip.id, "video_id": keep_id} for clip in moving])
        if fail_between:
            raise InjectedFailure("crashed after moving the clips")
        await videos.delete_video(tx, drop_id)


async def exercise_1_merge_two_videos(db: Database) -> None:
    await clear(db)
    keep = await videos.insert_video(db, "mergeKeep01")
    drop = await videos.insert_video(db, "mergeDrop01")
    for start in (0.0, 60.0):
        await clips.insert_clip(db, keep.id, start, start + 30.0)
    for start in (120.0, 180.0, 240.0):
        await clips.insert_clip(db, drop.id, start, start + 30.0)

    async def state() -> tuple[int, int, int]:
        return (await videos.count_videos(db), await clips.count_clips(db, keep.id),
                await clips.count_clips(db, drop.id))

    before = await state()
    try:
        await merge(db, keep.id, drop.id, fail_between=True)
    except InjectedFailure:
        pass
    after_failure = await state()
    print(f"(videos, clips of keep, clips of drop) before {before}, after the failed merge "
          f"{after_failure}")
    assert after_failure == before == (2, 2, 3), "the failed merge left everything as it was"
    await merge(db, keep.id, drop.id)
    merged = await state()
    print(f"after a successful merge: {merged}")
    assert merged == (1, 5, 0)


async def race(db: Database, job_id: int, worker: Callable[[], Awaitable[object]],
               writers: int = 20) -> int:
    await db.execute("UPDATE processing_jobs SET attempts = 0 WHERE id = ?", (job_id,))
    async with asyncio.TaskGroup() as group:
        for _ in range(writers):
            group.create_task(worker())
    return int(await db.fetchval(READ, (job_id,)))


async def exercise_2_lock_when_reading(db: Database) -> None:
    await clear(db)
    job = await jobs.enqueue(db, "render")
    # SQLite has no FOR UPDATE (a syntax error there) and needs none: the layer starts every
    # write transaction with BEGIN IMMEDIATE behind one lock, so transactions never overlap.
    lock = "" if db.name == "sqlite" else " FOR UPDATE"

    async def locked_read_modify_write() -> None:
        async with db.transaction() as tx:
            attempts = await tx.fetchval(READ + lock, (job.id,))  # others wait here for the lock
            await tx.execute(WRITE, (attempts + 1, job.id))

    kept = await race(db, job.id, locked_read_modify_write)
    print(f"read{lock or ''} in a transaction: {kept} of 20 increments kept")
    assert kept == 20, "a locked (or, on SQLite, serialized) read-modify-write loses nothing"
    # FOR UPDATE makes the read take the row lock, so the second writer's SELECT waits until the
    # first commits, and then reads the new value. Correct, but the writers queue on that row.


async def exercise_3_retry_with_tenacity(db: Database) -> None:
    await clear(db)
    job = await jobs.enqueue(db, "render")
    tries: list[int] = []

    async def conditional_update() -> None:
        count = 0
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(Conflict),
                                           wait=wait_random(0, 0.005),
                                           stop=stop_after_attempt(50), reraise=True):
            with attempt:
                count += 1
                attempts = await db.fetchval(READ, (job.id,))
                if not await db.execute(WRITE + " AND attempts = ?",
                                        (attempts + 1, job.id, attempts)):
                    raise Conflict(f"job {job.id} changed since we read attempts={attempts}")
        tries.append(count)

    kept = await race(db, job.id, conditional_update)
    assert kept == 20, "no update lost"
    assert len(tries) == 20, "every writer finished"
    print(f"conditional update with tenacity: {kept} of 20 kept, {sum(tries)} tries in total "
          f"(at most {max(tries)} for one writer)")
    # The random wait spreads the retries out, so fewer writers collide again on the next try.


async def exercise_4_deadline_on_a_transaction(db: Database) -> None:
    await clear(db)

    async def slow_import() -> None:
        async with db.transaction() as tx:
            await videos.insert_videos(tx, [{"youtube_id": f"cancel{n:05d}"} for n in range(100)])
            await asyncio.sleep(10)

    timed_out = False
    try:
        async with asyncio.timeout(0.2):
            await slow_import()
    except TimeoutError:
        timed_out = True
        print("TimeoutError after 0.2 s")
    stored, in_use = await videos.count_videos(db), db.pool_stats().in_use
    print("videos stored:", stored, "| connections in use:", in_use)
    assert timed_out, "the deadline raised TimeoutError"
    assert stored == 0, "the transaction was rolled back"
    assert in_use == 0, "the connection went back to the pool"


async def cut(db: Database, tx: Connection) -> None:
    """End ``tx``'s connection the way a server restart would (notebook 12, section 6)."""
    if db.name == "sqlite":
        await tx.raw.close()
    elif db.name == "postgresql":
        pid = await tx.fetchval("SELECT pg_backend_pid()")
        await db.execute("SELECT pg_terminate_backend(?)", (pid,))
    else:
        session = await tx.fetchval("SELECT CONNECTION_ID()")
        await db.execute(f"KILL CONNECTION {int(session)}")


async def exercise_5_retry_after_a_dropped_connection(db: Database) -> None:
    await clear(db)
    attempts = 0

    async def store_analysis(youtube_id: str) -> None:
        nonlocal attempts
        attempts += 1
        async with db.transaction() as tx:
            video = await videos.insert_video(tx, youtube_id, title=f"Talk {youtube_id}")
            await clips.insert_clips(tx, [
                {"video_id": video.id, "start_s": start, "end_s": start + 45.0, "ranking": rank}
                for rank, start in enumerate([30.0, 300.0, 900.0], start=1)])
            if attempts == 1:
                await cut(db, tx)  # the first attempt loses its connection halfway
            await jobs.enqueue(tx, "render", video_id=video.id)

    # Retrying the whole transaction is safe: a dropped connection rolled all of it back.
    retrying = AsyncRetrying(retry=retry_if_exception_type(OperationalError),
                             wait=wait_random(0, 0.05), stop=stop_after_attempt(3), reraise=True)
    await retrying(store_analysis, "retriedTalk")
    counts = {table: int(await db.fetchval(f"SELECT count(*) FROM {table}"))
              for table in ("videos", "clips", "processing_jobs")}
    print(f"{attempts} attempts; stored: {counts}")
    assert counts == {"videos": 1, "clips": 3, "processing_jobs": 1}
    assert attempts == 2, "the first attempt lost its connection, the second stored everything"


async def main() -> None:
    async with connect() as db:
        await reset(db)
        print(f"--- on {db.name}")
        for exercise in (exercise_1_merge_two_videos, exercise_2_lock_when_reading,
                         exercise_3_retry_with_tenacity, exercise_4_deadline_on_a_transaction,
                         exercise_5_retry_after_a_dropped_connection):
            print(f"--- {exercise.__name__}")
            await exercise(db)


if __name__ == "__main__":
    asyncio.run(main())
