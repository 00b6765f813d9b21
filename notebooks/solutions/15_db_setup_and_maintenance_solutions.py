"""Solutions to the exercises of notebooks/15_db_setup_and_maintenance.ipynb.

Run: .venv/bin/python notebooks/solutions/15_db_setup_and_maintenance_solutions.py
Like the notebook, it uses ``OPUSCLIP_DATABASE_URL`` (default: the SQLite file in work/) and
starts from an empty schema. A script starts its own event loop with asyncio.run(); in a
notebook, paste the body of a function into a cell and ``await`` it instead.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import asdict

from opusclip_lib import config
from opusclip_lib.db import (
    MIGRATIONS,
    Backend,
    Database,
    DatabaseError,
    Migration,
    connect,
    maintenance,
    reset,
    videos,
)

NEXT = MIGRATIONS[-1].version + 1  # the next migration after the shipped ones

CHANNEL_PAGE = "SELECT id, youtube_id, title FROM videos WHERE channel = ? AND status = ?"
WHOLE_CHANNEL = "SELECT id, youtube_id, title FROM videos WHERE channel = ?"


async def apply(db: Database, migration: Migration) -> None:
    """What ``migrate`` does for one missing version: its statements and its version row."""
    async with db.transaction() as tx:
        for statement in migration.statements(db.backend):
            await tx.execute(statement, name=f"migrate v{migration.version}")
        await tx.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)",
                         (migration.version, migration.name))


def add_language(b: Backend) -> list[str]:
    # PostgreSQL and MariaDB know ADD COLUMN IF NOT EXISTS; SQLite does not, but its DDL is
    # transactional, so a half-applied migration cannot happen there in the first place.
    if_missing = "" if b.name == "sqlite" else " IF NOT EXISTS"
    return [f"ALTER TABLE clips ADD COLUMN{if_missing} language VARCHAR(8)"]


async def exercise_1_a_fourth_migration(db: Database) -> None:
    naive = Migration(NEXT, "clip language", lambda b: ["ALTER TABLE clips ADD COLUMN language "
                                                     "VARCHAR(8)"])
    await apply(db, naive)
    await db.execute("DELETE FROM schema_version WHERE version = ?", (NEXT,))  # the crash before the record
    try:
        await apply(db, naive)
    except DatabaseError as error:
        print(f"naive, second run: {type(error).__name__}: {error}")
    else:
        raise AssertionError("the naive migration ran twice without an error")
    await db.execute("ALTER TABLE clips DROP COLUMN language")  # start again with the fixed one
    await db.execute("DELETE FROM schema_version WHERE version = ?", (NEXT,))
    idempotent = Migration(NEXT, "clip language", add_language)
    await apply(db, idempotent)
    if db.name == "sqlite":
        print("idempotent: applied; SQLite needs no IF NOT EXISTS here, the column and its "
              "version row commit together or not at all")
        return
    await db.execute("DELETE FROM schema_version WHERE version = ?", (NEXT,))  # crash again
    await apply(db, idempotent)
    print("idempotent: ran again after the simulated crash, no error")
    # The version table stops a *recorded* migration from running twice. Only the statements
    # themselves can make a run after a crash (DDL committed, version not recorded) harmless.
    # That crash can really happen on MariaDB, whose DDL commits on its own; PostgreSQL and
    # SQLite roll an ALTER back with its transaction, but IF NOT EXISTS costs nothing there.


async def drop_index(db: Database, name: str) -> None:
    on_table = " ON videos" if db.name == "mysql" else ""  # MariaDB wants the table too
    await db.execute(f"DROP INDEX {name}{on_table}")


async def p50_ms(db: Database, sql: str, params: tuple[str, ...], runs: int = 200) -> float:
    db.recorder.clear()
    for _ in range(runs):
        await db.fetch(sql, params, name="probe")
    return float(db.recorder.frame("query")["seconds"].median() * 1000)


async def exercise_2_the_wrong_column_order(db: Database) -> None:
    queries = {"channel + status": (CHANNEL_PAGE, ("channel-07", "done")),
               "channel only": (WHOLE_CHANNEL, ("channel-07",))}
    for columns in (["channel", "status"], ["status", "channel"], ["channel"]):
        index = await maintenance.create_index(db, "videos", columns)
        await maintenance.vacuum(db, ["videos"])
        for label, (sql, params) in queries.items():
            plan = await maintenance.explain(db, sql, params)
            p50 = await p50_ms(db, sql, params)
            print(f"index ({', '.join(columns)}), {label}: p50 {p50:.3f} ms")
            print("    " + plan.replace("\n", "\n    "))
            if columns == ["channel", "status"]:
                assert index in plan, f"({', '.join(columns)}) serves {label}"
        await drop_index(db, index)
    # An index serves the queries that filter on a *leftmost prefix* of its columns:
    # (channel, status) serves both queries; (status, channel) only the one that has status:
    # for "channel only" PostgreSQL and MariaDB read the table, and SQLite either scans or, with
    # ANALYZE statistics showing only 3 statuses, "skip-scans" (one search per status value);
    # (channel) serves both, the channel + status query then checking status row by row (or,
    # on PostgreSQL, combining it with videos_status_idx in a BitmapAnd).


async def exercise_3_a_backup_during_writes(db: Database) -> None:
    await db.execute("DELETE FROM videos")
    stop = asyncio.Event()
    batches = 0

    async def writer() -> None:
        nonlocal batches
        while not stop.is_set():
            rows = [{"youtube_id": f"nb15w{batches:03d}{k:03d}"} for k in range(10)]
            await videos.insert_videos(db, rows)  # one transaction per batch of 10
            batches += 1
            await asyncio.sleep(0)

    suffix = "sqlite" if db.name == "sqlite" else "jsonl"
    path = config.work_dir() / "backups" / f"15_solution_{db.name}.{suffix}"
    async with asyncio.TaskGroup() as group:
        group.create_task(writer())
        await asyncio.sleep(0.05)
        await maintenance.backup(db, path)
        stop.set()
    if db.name == "sqlite":
        async with connect(f"sqlite:///{path}", migrate=False, max_size=1) as copy:
            in_backup = int(await copy.fetchval("SELECT count(*) FROM videos"))
    else:
        with path.open(encoding="utf-8") as lines:
            next(lines)  # the header
            in_backup = Counter(json.loads(line)["table"] for line in lines)["videos"]
    assert in_backup % 10 == 0, "the backup holds whole transactions only"
    assert in_backup <= await videos.count_videos(db)
    print(f"videos in the backup: {in_backup} (a multiple of 10: {in_backup % 10 == 0}); "
          f"in the table now: {await videos.count_videos(db)}")


async def health_json(db: Database) -> str:
    health = await maintenance.health(db)
    if not health.ok:
        status = "down"
    elif health.ping_ms > 50 or health.pool.waiting > 0:
        status = "degraded"
    else:
        status = "ok"
    return json.dumps({"status": status, **asdict(health)})


async def exercise_4_a_health_endpoint(db: Database) -> None:
    idle = await health_json(db)
    assert json.loads(idle)["status"] != "down"
    print("idle:      ", idle)

    async def hold_a_connection() -> None:
        async with db.acquire() as connection:
            await connection.fetchval("SELECT 1")
            await asyncio.sleep(0.1)

    async with asyncio.TaskGroup() as group:
        for _ in range(db.pool_stats().max_size + 2):  # more requests than connections
            group.create_task(hold_a_connection())
        await asyncio.sleep(0.01)
        loaded = await health_json(db)
        # the health check waits for a connection like everyone else: its ping shows it
        assert json.loads(loaded)["status"] == "degraded", loaded
        print("under load:", loaded)


async def main() -> None:
    async with connect(config.database_url()) as db:
        await reset(db)
        print(f"--- backend: {db.name}")
        await videos.insert_videos(db, [
            {"youtube_id": f"nb15sol{n:04d}", "channel": f"channel-{n % 60:02d}",
             "status": ["new", "queued", "done"][n // 60 % 3]} for n in range(6000)],
            method="bulk")
        for exercise in (exercise_1_a_fourth_migration, exercise_2_the_wrong_column_order,
                         exercise_3_a_backup_during_writes, exercise_4_a_health_endpoint):
            print(f"--- {exercise.__name__}")
            await exercise(db)


if __name__ == "__main__":
    asyncio.run(main())
