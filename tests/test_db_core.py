"""Round trips on SQLite, PostgreSQL and MariaDB: CRUD, batches, transactions, typed errors,
failure injection (mid-batch violation, cancellation, a killed backend), metrics, maintenance."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3

import pytest

from opusclip_lib.db import (
    MIGRATIONS,
    CheckViolationError,
    ConfigurationError,
    ConnectionLostError,
    ConnectionSharedError,
    Database,
    ForeignKeyViolationError,
    InvalidUrlError,
    InvalidYouTubeIdError,
    NotFoundError,
    NotNullViolationError,
    OperationalError,
    PoolTimeoutError,
    UniqueViolationError,
    ValidationError,
    ValueTooLongError,
    clips,
    connect,
    maintenance,
    migrate,
    parse_url,
    reset,
    schema_version,
    videos,
)
from opusclip_lib.db.backend import numbered_placeholders
from opusclip_lib.monitoring import open_feed

# Statements that keep the server busy, for cancelling a query in flight.
SLOW_QUERY = {"postgresql": "SELECT pg_sleep(5)", "mysql": "SELECT SLEEP(5)"}


def video(n: int, **extra: object) -> dict[str, object]:
    return {"youtube_id": f"vid{n:08d}", "title": f"Video {n}", **extra}


# --- URLs and SQL translation (no server) ---------------------------------------------------


def test_urls_select_backend_and_options() -> None:
    assert parse_url("sqlite:///rel/x.db").path == "rel/x.db"
    assert parse_url("sqlite:////abs/x.db").path == "/abs/x.db"
    pg = parse_url("postgres://u:secret@db:5433/app?schema=demo&max_size=7")
    assert (pg.backend, pg.host, pg.port, pg.user, pg.database) == (
        "postgresql", "db", 5433, "u", "app")
    assert pg.options == {"schema": "demo", "max_size": "7"}
    assert "secret" not in str(pg)
    assert parse_url("mariadb://root@h/test").backend == "mysql"
    with pytest.raises(ConfigurationError, match="unsupported"):
        parse_url("oracle://x/y")
    with pytest.raises(ConfigurationError, match="unknown option"):
        parse_url("postgresql://h/db?max_sise=3")


def test_placeholders_are_rewritten_outside_quotes_only() -> None:
    sql = "SELECT '?' AS q, \"a?\" FROM t WHERE a = ? AND b = ?"
    assert numbered_placeholders(sql, "${}") == (
        "SELECT '?' AS q, \"a?\" FROM t WHERE a = $1 AND b = $2")


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:1/test",
                                 "mysql://root@127.0.0.1:1/test",
                                 "sqlite:////proc/no/such/dir/x.db"])
async def test_unreachable_database_raises_typed_error(url: str) -> None:
    with pytest.raises(OperationalError, match="cannot open a"):
        async with connect(url, acquire_timeout_s=2):
            pass


async def test_pool_sizes_come_from_url_and_defaults() -> None:
    assert Database("postgresql://h/db").backend.max_size == 20
    assert Database("postgresql://h/db").backend.min_size == 5
    assert Database("mysql://h/db?min_size=2&max_size=3").backend.max_size == 3
    assert Database("sqlite:///:memory:").backend.max_size == 1


# --- CRUD -------------------------------------------------------------------------------------


async def test_video_crud_round_trip(db: Database) -> None:
    created = await videos.insert_video(db, "dQw4w9WgXcQ", title="Never", duration_s=212,
                                        metadata={"views": 1, "tags": ["a"]})
    assert created.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert created.metadata == {"views": 1, "tags": ["a"]}
    assert created.duration_s == 212.0
    assert created.created_at.tzinfo is not None

    assert await videos.get_video(db, created.id) == created
    assert await videos.find_video(db, "dQw4w9WgXcQ") == created
    assert await videos.find_video(db, "AAAAAAAAAAA") is None

    updated = await videos.update_video(db, created.id, status="downloaded", channel="Rick")
    assert (updated.status, updated.channel, updated.title) == ("downloaded", "Rick", "Never")
    assert updated.updated_at >= created.updated_at
    assert [v.id for v in await videos.list_videos(db, status="downloaded")] == [created.id]
    assert await videos.count_videos(db) == 1

    await videos.delete_video(db, created.id)
    with pytest.raises(NotFoundError):
        await videos.get_video(db, created.id)
    with pytest.raises(NotFoundError):
        await videos.update_video(db, created.id, title="gone")
    with pytest.raises(NotFoundError):
        await videos.delete_video(db, created.id)


async def test_youtube_ids_are_case_sensitive(db: Database) -> None:
    await videos.insert_video(db, "abcdefghijk")
    await videos.insert_video(db, "ABCDEFGHIJK")
    assert (await videos.find_video(db, "ABCDEFGHIJK")).youtube_id == "ABCDEFGHIJK"


async def test_clip_crud_and_cascade(db: Database) -> None:
    parent = await videos.insert_video(db, "clipParent1")
    first = await clips.insert_clip(db, parent.id, 10, 25.5, ranking=2, title="Second best",
                                    virality_score=71.5, transcript="so anyway")
    best = await clips.insert_clip(db, parent.id, 30, 45, ranking=1, hook="Wait for it")
    assert (first.start_s, first.end_s, first.status) == (10.0, 25.5, "pending")
    assert [c.id for c in await clips.list_clips(db, parent.id)] == [best.id, first.id]
    rendered = await clips.update_clip(db, first.id, status="rendered", clip_path="/c/1.mp4",
                                       thumbnail_path="/c/1.jpg", voiceover_path="/c/1.wav")
    assert rendered.clip_path == "/c/1.mp4"
    assert await clips.get_clip(db, first.id) == rendered
    await clips.delete_clip(db, best.id)
    assert await clips.count_clips(db, parent.id) == 1
    await videos.delete_video(db, parent.id)
    assert await clips.count_clips(db) == 0


# --- batches ------------------------------------------------------------------------------


async def test_videos_by_youtube_id_lock_and_upsert_some_columns(db: Database) -> None:
    await videos.insert_videos(db, [video(n, channel="first") for n in range(3)])
    assert await videos.stored_youtube_ids(db) == [f"vid{n:08d}" for n in range(3)]
    wanted = [f"vid{n:08d}" for n in (2, 0, 7)]
    assert sorted(await videos.videos_by_youtube_id(db, wanted)) == ["vid00000000", "vid00000002"]
    async with db.transaction() as tx:
        locked = await videos.lock_videos(tx, wanted, ("status", "title"))
        assert locked["vid00000002"] == {"youtube_id": "vid00000002", "status": "new",
                                         "title": "Video 2"}
        assert sorted(locked) == ["vid00000000", "vid00000002"]
        await videos.update_video(tx, (await videos.find_video(tx, "vid00000000")).id,
                                  status="queued")
        await videos.upsert_videos(tx, [video(0, title="new title", channel="second"),
                                        video(5, channel="second")], update=("title",))
    kept = await videos.find_video(db, "vid00000000")
    assert (kept.title, kept.channel, kept.status) == ("new title", "first", "queued")
    added = await videos.find_video(db, "vid00000005")
    assert (added.channel, added.status) == ("second", "new")
    with pytest.raises(ValidationError):
        await videos.upsert_videos(db, [video(1)], update=("no_such_column",))


@pytest.mark.parametrize("method", ["batch", "bulk"])
async def test_batch_insert_upsert_update(db: Database, method: str) -> None:
    assert await videos.insert_videos(db, [video(n) for n in range(50)], method=method) == 50
    assert await videos.count_videos(db) == 50

    changed = await videos.upsert_videos(db, [video(1, title="renamed"), video(99)])
    assert changed == 2
    assert (await videos.find_video(db, "vid00000001")).title == "renamed"
    assert await videos.count_videos(db) == 51

    await videos.update_videos(db, [{"youtube_id": f"vid{n:08d}", "status": "queued"}
                                    for n in range(10)], key="youtube_id")
    assert await videos.count_videos(db, status="queued") == 10

    parent = await videos.find_video(db, "vid00000000")
    spans = [{"video_id": parent.id, "start_s": s, "end_s": s + 5, "ranking": s}
             for s in range(0, 50, 10)]
    assert await clips.insert_clips(db, spans, method=method) == 5
    await clips.upsert_clips(db, [{**spans[0], "title": "best"}])
    listed = await clips.list_clips(db, parent.id)
    assert len(listed) == 5
    assert listed[0].title == "best"
    await clips.update_clips(db, [{"id": c.id, "status": "rendered"} for c in listed])
    assert {c.status for c in await clips.list_clips(db, parent.id)} == {"rendered"}


@pytest.mark.parametrize("method", ["batch", "bulk"])
async def test_constraint_violation_mid_batch_stores_nothing(db: Database, method: str) -> None:
    await videos.insert_video(db, "vid00000030")
    batch = [video(n) for n in range(60)]  # row 30 collides with the row above
    with pytest.raises(UniqueViolationError):
        await videos.insert_videos(db, batch, method=method)
    assert await videos.count_videos(db) == 1


async def test_invalid_row_rejects_whole_batch_before_sql(db: Database) -> None:
    batch = [video(n) for n in range(10)] + [{"youtube_id": "short"}]
    with pytest.raises(InvalidYouTubeIdError, match="11 characters"):
        await videos.insert_videos(db, batch)
    assert await videos.count_videos(db) == 0


# --- bad input and typed errors -----------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["", "short", "twelve_chars", "has space!!", "exactly/11c",
                                    None, 12345678901])
async def test_malformed_youtube_ids_raise(db: Database, bad_id: object) -> None:
    with pytest.raises(InvalidYouTubeIdError):
        await videos.insert_video(db, bad_id)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_url", ["youtube.com/watch?v=x", "ftp://x.org/a", "http://",
                                     "https://exa mple.com", "javascript:alert(1)"])
async def test_malformed_urls_raise(db: Database, bad_url: str) -> None:
    with pytest.raises(InvalidUrlError):
        await videos.insert_video(db, "goodId_0001", url=bad_url)


async def test_overlong_and_wrong_values_raise(db: Database) -> None:
    too_long = r"videos\.title is 501 characters; the limit is 500"
    with pytest.raises(ValueTooLongError, match=too_long):
        await videos.insert_video(db, "goodId_0001", title="x" * 501)
    with pytest.raises(ValidationError, match="end after it starts"):
        await clips.insert_clip(db, 1, 5, 5)
    with pytest.raises(ValidationError, match="between 0 and 100"):
        await clips.insert_clip(db, 1, 0, 5, virality_score=101)
    with pytest.raises(ValidationError, match="no writable column"):
        await videos.insert_video(db, "goodId_0001", colour="red")


async def test_server_side_constraints_map_to_typed_errors(db: Database) -> None:
    """Bypass the Python checks with raw SQL: the database's own refusal is typed too."""
    await videos.insert_video(db, "dupe_id_001")
    parent = await videos.find_video(db, "dupe_id_001")
    insert = "INSERT INTO videos (youtube_id, url) VALUES (?, ?)"
    with pytest.raises(UniqueViolationError) as unique:
        await db.execute(insert, ("dupe_id_001", "https://x.org"))
    assert unique.value.backend == db.name
    with pytest.raises(CheckViolationError) as check:
        await db.execute("INSERT INTO clips (video_id, start_s, end_s) VALUES (?, ?, ?)",
                         (parent.id, 9.0, 3.0))
    assert "clips_end_after_start" in str(check.value)
    with pytest.raises(ForeignKeyViolationError):
        await db.execute("INSERT INTO clips (video_id, start_s, end_s) VALUES (?, ?, ?)",
                         (10**9, 1.0, 3.0))
    with pytest.raises(NotNullViolationError):
        await db.execute(insert, ("nullUrl_001", None))
    if db.name != "sqlite":  # SQLite does not enforce VARCHAR lengths; validation does
        with pytest.raises(ValueTooLongError):
            await db.execute(insert, ("x" * 12, "https://x.org"))
    assert await videos.count_videos(db) == 1


# --- transactions -------------------------------------------------------------------------


async def test_transaction_commits_or_rolls_back_with_savepoints(db: Database) -> None:
    async with db.transaction() as tx:
        await videos.insert_video(tx, "kept_000001")
        with pytest.raises(UniqueViolationError):
            async with tx.transaction():  # savepoint: only this part is undone
                await videos.insert_video(tx, "undone_0001")
                await videos.insert_video(tx, "kept_000001")
        await videos.insert_video(tx, "kept_000002")
    assert sorted(v.youtube_id for v in await videos.list_videos(db)) == [
        "kept_000001", "kept_000002"]

    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await videos.insert_video(tx, "rolled_back")
            raise RuntimeError("abort")
    assert await videos.count_videos(db) == 2
    assert db.pool_stats().in_use == 0


async def test_task_cancelled_mid_transaction_rolls_back(db: Database) -> None:
    inside = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as tx:
            await videos.insert_videos(tx, [video(n) for n in range(20)])
            inside.set()
            if db.name in SLOW_QUERY:
                await tx.fetch(SLOW_QUERY[db.name])  # cancelled while the server works
            else:
                await asyncio.sleep(10)

    task = asyncio.create_task(writer())
    await inside.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert db.pool_stats().in_use == 0
    assert await videos.count_videos(db) == 0
    await videos.insert_video(db, "after_00001")  # the pool still works
    assert await videos.count_videos(db) == 1


async def test_a_polling_feed_closes_when_its_cancellation_lands_after_a_poll(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The poll finished, so its rows stand and the cancellation is kept, not raised (see
    Connection.transaction); the poller must still stop, or closing the feed waits forever."""
    armed, stalled = False, asyncio.Event()
    release = db.backend.release

    async def release_then_stall_once(raw: object, *, discard: bool) -> None:
        await release(raw, discard=discard)
        if armed and not stalled.is_set():
            stalled.set()
            await asyncio.Event().wait()  # the cancellation lands here, after the poll

    monkeypatch.setattr(db.backend, "release", release_then_stall_once)
    async with asyncio.timeout(30):  # a guard against the hang, not a timing
        async with open_feed(db, None, transport="polling", poll_interval_s=0.01) as feed, \
                feed.updates():
            armed = True
            await stalled.wait()
    assert stalled.is_set()  # the block exited: the poller stopped when it was cancelled


async def test_concurrent_tasks_use_separate_connections(db: Database) -> None:
    async def insert_pair(n: int) -> None:
        async with db.transaction() as tx:
            await videos.insert_video(tx, f"pair{n:03d}aaaa")
            await asyncio.sleep(0.01)
            await videos.insert_video(tx, f"pair{n:03d}bbbb")

    await asyncio.gather(*(insert_pair(n) for n in range(12)))
    assert await videos.count_videos(db) == 24
    assert db.pool_stats().in_use == 0


async def test_a_connection_cannot_be_shared_between_tasks(db: Database) -> None:
    async with db.transaction() as tx:
        await videos.insert_video(tx, "owner_00001")
        outcomes = await asyncio.gather(videos.insert_video(tx, "intrude_001"),
                                        videos.insert_video(tx, "intrude_002"),
                                        return_exceptions=True)
        assert [type(outcome) for outcome in outcomes] == [ConnectionSharedError] * 2
    assert await videos.count_videos(db) == 1


async def test_pool_acquire_times_out(db_url: str) -> None:
    async with connect(db_url, max_size=1, acquire_timeout_s=0.2) as small:
        async with small.acquire():
            with pytest.raises(PoolTimeoutError, match="max_size=1"):
                async with small.acquire():
                    pass
        assert await small.fetchval("SELECT 1") == 1


@pytest.fixture
async def postgres_db(postgres_url: str,
                      scratch_namespaces: object) -> Database:  # type: ignore[misc]
    async with connect(scratch_namespaces(postgres_url), min_size=1, max_size=3) as database:
        yield database


async def test_postgres_backend_killed_mid_transaction(postgres_db: Database) -> None:
    db = postgres_db
    with pytest.raises(ConnectionLostError, match="lost the connection to postgresql"):
        async with db.transaction() as tx:
            await videos.insert_video(tx, "killed_0001")
            pid = await tx.fetchval("SELECT pg_backend_pid()")
            assert await db.fetchval("SELECT pg_terminate_backend(?)", (pid,)) is True
            await videos.insert_video(tx, "killed_0002")
    assert db.pool_stats().in_use == 0
    assert await videos.find_video(db, "killed_0001") is None
    await videos.insert_video(db, "alive_00001")
    assert await db.fetchval("SELECT count(*) FROM videos WHERE youtube_id = ?",
                             ("alive_00001",)) == 1


async def test_postgres_session_settings_do_not_reach_the_next_borrower(
        postgres_db: Database) -> None:
    """Releases skip asyncpg's reset query unless a statement could have changed the session."""
    db = postgres_db
    default = await db.fetchval("SHOW statement_timeout")
    async with db.acquire() as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        await conn.execute("SET statement_timeout = '7s'")
        assert await conn.fetchval("SHOW statement_timeout") == "7s"
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid  # the same session
        assert await conn.fetchval("SHOW statement_timeout") == default
        key = secrets.randbits(62)  # the server is shared: a fixed key could be taken
        assert await conn.fetchval("SELECT pg_try_advisory_lock(?)", (key,)) is True
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                   "AND pid = pg_backend_pid()") == 0


# --- metrics --------------------------------------------------------------------------------


async def test_every_query_is_recorded(db: Database) -> None:
    db.recorder.clear()
    await videos.insert_videos(db, [video(n) for n in range(5)])
    with pytest.raises(UniqueViolationError):
        await videos.insert_video(db, "vid00000000")
    frame = db.recorder.frame("query")
    assert {"name", "seconds", "ok", "error", "backend", "rows"} <= set(frame.columns)
    assert set(frame["backend"]) == {db.name}
    batch = frame[frame["name"] == "batch insert videos"].iloc[0]
    assert batch["rows"] == 5
    assert batch["ok"]
    failed = frame[~frame["ok"]]
    assert list(failed["error"]) == ["UniqueViolationError"]


async def test_pool_sampler_records_usage(db: Database) -> None:
    db.recorder.clear()
    async with db.sample_pool(interval_s=0.01), db.acquire(), db.acquire():
        await asyncio.sleep(0.05)
    samples = db.recorder.frame("pool")
    assert len(samples) >= 3
    assert samples["in_use"].max() == 2
    assert (samples["size"] >= samples["in_use"]).all()


# --- schema and maintenance ---------------------------------------------------------------


async def test_migrations_are_versioned_and_idempotent(db: Database) -> None:
    latest = MIGRATIONS[-1].version
    assert await migrate(db) == latest
    assert await migrate(db) == latest
    assert await db.fetchval("SELECT count(*) FROM schema_version") == len(MIGRATIONS)
    await videos.insert_video(db, "beforeReset")
    assert await reset(db) == latest
    assert await videos.count_videos(db) == 0
    assert await schema_version(db) == latest


async def test_a_file_video_is_keyed_by_its_content(db: Database) -> None:
    digest = "ab" * 32
    added = await videos.insert_video(db, videos.source_key(bytes.fromhex(digest)),
                                      url="file:///talks/my%20talk.mp4",
                                      source="/talks/my talk.mp4", content_sha256=digest)
    assert await videos.find_by_content(db, digest) == added
    with pytest.raises(UniqueViolationError):
        await videos.insert_video(db, "otherKey123", url="file:///copy.mp4",
                                  content_sha256=digest)


async def test_a_video_url_may_be_a_file_uri_but_not_another_scheme(db: Database) -> None:
    with pytest.raises(InvalidUrlError):
        await videos.insert_video(db, "ftpVideo123", url="ftp://example.com/a.mp4")


async def test_maintenance_helpers(db: Database, tmp_path: object) -> None:
    await videos.insert_videos(db, [video(n) for n in range(30)])
    plan = await maintenance.explain(db, "SELECT * FROM videos WHERE youtube_id = ?",
                                     ("vid00000003",))
    assert "videos_youtube_id_key" in plan or "sqlite_autoindex_videos" in plan

    name = await maintenance.create_index(db, "videos", ["channel"])
    assert name == await maintenance.create_index(db, "videos", ["channel"])  # idempotent
    await maintenance.vacuum(db, ["videos"])

    report = await maintenance.health(db)
    assert report.ok
    assert report.schema_version == MIGRATIONS[-1].version
    assert report.ping_ms > 0
    assert report.version
    assert report.pool.max_size == 4

    path = await maintenance.backup(db, f"{tmp_path}/backup.out")
    if db.name == "sqlite":
        with sqlite3.connect(path) as copy:
            assert copy.execute("SELECT count(*) FROM videos").fetchone() == (30,)
        copy.close()
    else:
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert lines[0]["format"] == "opusclip-backup"
        assert sum(1 for line in lines[1:] if line["table"] == "videos") == 30
