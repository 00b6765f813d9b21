"""Solutions to the exercises of notebooks/10_db_crud.ipynb.

Run: .venv/bin/python notebooks/solutions/10_db_crud_solutions.py
Like the notebook, it uses the database in OPUSCLIP_DATABASE_URL (default: a SQLite file in
work/) and drops and recreates its tables first. This is a script, so it starts its own event
loop with asyncio.run(); in a notebook, paste the body of a function into a cell and ``await`` it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from opusclip_lib.db import (
    Database,
    DatabaseError,
    PoolTimeoutError,
    UniqueViolationError,
    ValidationError,
    Video,
    clips,
    connect,
    reset,
    videos,
)


async def exercise_1_page_through_a_channel(db: Database) -> None:
    for n in range(7):
        await videos.insert_video(db, f"pageTest{n:03d}", title=f"Episode {n}",
                                  channel="Paging Channel")
    offset, page_size, seen = 0, 3, []
    while page := await videos.list_videos(db, channel="Paging Channel", order_by="-id",
                                           limit=page_size, offset=offset):
        print(f"offset {offset}: {[video.title for video in page]}")
        seen += [video.title for video in page]
        offset += page_size
    assert seen == [f"Episode {n}" for n in range(6, -1, -1)], "every row once, newest first"
    # Without ORDER BY, SQL promises no order at all: two queries may return the rows in a
    # different order (after an update, a vacuum, a new plan), and pages would then repeat some
    # rows and skip others. Order by something unique (here the id) so every row has one place.


async def get_or_create_video(db: Database, youtube_id: str, **fields: Any) -> Video:
    """The existing video, or a new one; safe when many tasks ask for the same id at once."""
    existing = await videos.find_video(db, youtube_id)
    if existing is not None:
        return existing
    try:
        return await videos.insert_video(db, youtube_id, **fields)
    except UniqueViolationError:
        # Another task inserted it between our look-up and our insert: the database's unique
        # constraint picked one winner, and the winner's row is the answer for everybody.
        winner = await videos.find_video(db, youtube_id)
        assert winner is not None
        return winner


async def exercise_2_get_or_create(db: Database) -> None:
    results = await asyncio.gather(*(get_or_create_video(db, "raceTalk001", title="Race")
                                     for _ in range(10)))
    stored = [v for v in await videos.list_videos(db) if v.youtube_id == "raceTalk001"]
    assert len({video.id for video in results}) == 1, "every call got the same row"
    assert len(stored) == 1, "one row for the YouTube id"
    print(f"10 concurrent calls returned {len({video.id for video in results})} distinct id(s); "
          f"rows with that YouTube id: {len(stored)}")
    # find_video alone is not enough: all 10 tasks can look before any of them inserts, so
    # several try to insert. The losers get UniqueViolationError and read the winner's row.


async def exercise_3_run_out_of_connections() -> None:
    async with connect(max_size=2, acquire_timeout_s=0.2) as small:
        async with small.acquire():
            async with small.acquire():
                try:
                    async with small.acquire():
                        raise AssertionError("a third connection from a pool of two")
                except PoolTimeoutError as error:
                    print(f"PoolTimeoutError: {error}")
            # The second connection went back to the pool when its block ended.
            async with small.acquire() as third:
                answered = await third.fetchval("SELECT 1") == 1
                assert answered, "a released connection serves the next request"
                print("with one released, the third request gets a connection:", answered)
    # The message gives the limit (max_size) and how many connections were in use: either the
    # pool is too small for the work, or some task holds a connection far longer than it should.


async def exercise_4_before_sql_or_from_the_database(db: Database) -> None:
    video = await videos.insert_video(db, "errorTest01")
    await clips.insert_clip(db, video.id, 0.0, 30.0)
    attempts: dict[str, Callable[[], Awaitable[object]]] = {
        "negative duration_s": lambda: videos.insert_video(db, "errorTest02", duration_s=-5.0),
        "ftp:// url": lambda: videos.insert_video(db, "errorTest03",
                                                  url="ftp://example.com/v.mp4"),
        "virality_score=150": lambda: clips.insert_clip(db, video.id, 40.0, 70.0,
                                                        virality_score=150),
        "clip of a missing video": lambda: clips.insert_clip(db, 10_000, 0.0, 30.0),
        "same (video_id, start_s, end_s)": lambda: clips.insert_clip(db, video.id, 0.0, 30.0),
    }
    refused_before_sql = {}
    for case, attempt in attempts.items():
        try:
            await attempt()
        except DatabaseError as error:
            refused_before_sql[case] = isinstance(error, ValidationError)
            where = "before any SQL" if refused_before_sql[case] else "from the database"
            print(f"{case}: {type(error).__name__}, {where}")
    assert refused_before_sql == {"negative duration_s": True, "ftp:// url": True,
                                  "virality_score=150": True, "clip of a missing video": False,
                                  "same (video_id, start_s, end_s)": False}
    # Value rules (ranges, URL shape) live next to the schema and run in Python; facts about
    # other rows (does the video exist, is the span already taken) only the database knows.


async def main() -> None:
    async with connect() as db:
        await reset(db)
        print(f"--- on {db.name}")
        for exercise in (exercise_1_page_through_a_channel, exercise_2_get_or_create):
            print(f"--- {exercise.__name__}")
            await exercise(db)
        print("--- exercise_3_run_out_of_connections")
        await exercise_3_run_out_of_connections()
        print("--- exercise_4_before_sql_or_from_the_database")
        await exercise_4_before_sql_or_from_the_database(db)


if __name__ == "__main__":
    asyncio.run(main())
