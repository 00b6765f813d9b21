"""The database fault matrix: every fault against every backend it applies to.

Each row is a test function ``test_<fault>``, parametrized over the backends the fault exists
on. Every row asserts the same four things:

* the fault surfaces as a typed error from :mod:`opusclip_lib.db.errors` within
  :data:`faults.BOUND_S` (a guard against hangs, not a speed test);
* nothing is stored partially, and nothing is stored after a reported cancellation;
* no connection is leaked (the pool has none in use) and no task is left running;
* the next operation succeeds.

Faults are real: sessions killed with ``pg_terminate_backend`` / ``KILL CONNECTION``, a
listener that accepts and never answers, a proxy that stops forwarding or drops everything.
The shared servers are never stopped. ``scripts/fault_matrix.py`` runs this module and prints
the table that README's "Reliability" section shows; each row records the error it saw with
``record_property("error", ...)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Literal

import pytest

from opusclip_lib.db import (
    ConnectionLostError,
    Database,
    DatabaseError,
    OperationalError,
    StatementTimeoutError,
    Timeouts,
    clear,
    connect,
    jobs,
    parse_url,
    videos,
)
from tests.conftest import require_server
from tests.faults import HungServer, Proxy, other_tasks, raises_within
from tests.waiting import until

SERVERS = {"postgresql": "postgres", "mysql": "mysql"}
ALL = ["sqlite", "postgresql", "mysql"]
SERVERS_ONLY = list(SERVERS)
# Short deadlines, so each fault surfaces in seconds.
FAST = Timeouts(connect_s=2, acquire_s=4, statement_s=2, copy_s=4, cleanup_s=1,
                close_grace_s=2)
RecordProperty = Callable[[str, object], None]


def rows(count: int, prefix: str = "f") -> list[dict[str, object]]:
    return [{"youtube_id": f"{prefix}{n:010d}", "title": f"fault {n}"} for n in range(count)]


@pytest.fixture
def url(request: pytest.FixtureRequest, tmp_path: Path,
        scratch_namespaces: Callable[[str], str]) -> str:
    """A private database of the backend in ``request.param``."""
    backend = request.param
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/faults.db"
    return scratch_namespaces(require_server(SERVERS[backend]))


@asynccontextmanager
async def fresh(url: str, **options: object) -> AsyncIterator[Database]:
    options = {"min_size": 1, "max_size": 4, "timeouts": FAST, **options}
    async with connect(url, **options) as db:  # type: ignore[arg-type]
        await clear(db)
        yield db


def through(url: str, port: int) -> str:
    """``url`` with its server reached at 127.0.0.1:``port`` (a proxy or a fake server)."""
    return dataclasses.replace(parse_url(url), host="127.0.0.1", port=port).render(
        hide_password=False)


async def stored(db: Database) -> int:
    return int(await db.fetchval("SELECT count(*) FROM videos"))


@asynccontextmanager
async def leaves_no_task() -> AsyncIterator[None]:
    """Wrap a row, pools included: once they are closed, no task of theirs is left running."""
    before = other_tasks()
    yield
    assert not other_tasks() - before


async def assert_recovered(db: Database) -> None:
    """No connection on loan, and the next operation succeeds."""
    assert db.pool_stats().in_use == 0
    await clear(db)
    assert await videos.insert_videos(db, rows(3, "n"), method="batch") == 3


async def session_id(ex: object) -> int:
    backend = ex.backend.name  # type: ignore[attr-defined]
    sql = "SELECT pg_backend_pid()" if backend == "postgresql" else "SELECT CONNECTION_ID()"
    return int(await ex.fetchval(sql))  # type: ignore[attr-defined]


async def kill(admin: Database, session: int) -> None:
    if admin.name == "postgresql":
        await admin.execute("SELECT pg_terminate_backend(?)", (session,))
    else:
        await admin.execute(f"KILL CONNECTION {int(session)}")


async def wait_until_busy(admin: Database, session: int) -> None:
    """Poll the server until ``session`` is running an INSERT or COPY (a state, not a delay)."""
    if admin.name == "postgresql":
        sql = ("SELECT count(*) FROM pg_stat_activity WHERE pid = ? AND state = 'active' "
               "AND (query LIKE 'COPY%' OR query LIKE 'INSERT%')")
    else:
        sql = ("SELECT count(*) FROM information_schema.processlist WHERE id = ? "
               "AND info LIKE 'INSERT%'")
    await until(lambda: admin.fetchval(sql, (session,)), poll_s=0.002)


# --- rows --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", SERVERS_ONLY, indirect=True)
@pytest.mark.parametrize("method", ["bulk", "batch"])
async def test_session_killed_mid_insert(url: str, method: Literal["bulk", "batch"],
                                         record_property: RecordProperty) -> None:
    """Issue 9 item 1: a COPY (or executemany) whose session is killed fails at once as a lost
    connection (it used to wait forever for room to write)."""
    async with leaves_no_task(), fresh(url) as db, fresh(url, migrate=False) as admin:
        session: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def load() -> None:
            async with db.transaction() as tx:
                session.set_result(await session_id(tx))
                await videos.insert_videos(tx, rows(100_000), method=method)

        loading = asyncio.create_task(load())
        await wait_until_busy(admin, await session)
        await kill(admin, session.result())
        error = await raises_within(loading, ConnectionLostError)
        record_property("error", type(error).__name__)
        assert await stored(db) == 0
        await assert_recovered(db)


CANCEL_AFTER_S = [0.0, 0.005, 0.01, 0.02, 0.033, 0.04, 0.051, 0.07, 0.1, 0.15]


@pytest.mark.parametrize("url", ALL, indirect=True)
@pytest.mark.parametrize("method", ["bulk", "batch"])
async def test_cancelled_mid_insert(url: str, method: Literal["bulk", "batch"],
                                    record_property: RecordProperty) -> None:
    """Issue 9 item 2: a batch insert cancelled at many points ends, and stores all or nothing
    (nothing whenever the caller saw the cancellation)."""
    outcomes = []
    async with leaves_no_task(), fresh(url) as db:
        for delay_s in CANCEL_AFTER_S:
            inside = asyncio.Event()

            async def load(inside: asyncio.Event) -> None:
                async with db.transaction() as tx:
                    inside.set()
                    await videos.insert_videos(tx, rows(20_000), method=method)

            loading = asyncio.create_task(load(inside))
            await inside.wait()
            await asyncio.sleep(delay_s)  # the cancel point under test, not a synchronisation
            loading.cancel()
            try:
                async with asyncio.timeout(30):
                    await loading
                outcomes.append("stored")
                assert await stored(db) == 20_000
            except asyncio.CancelledError:
                outcomes.append("cancelled")
                assert await stored(db) == 0
            await clear(db)
        assert "cancelled" in outcomes
        record_property("error", "CancelledError")
        await assert_recovered(db)


@pytest.mark.parametrize("url", ALL, indirect=True)
async def test_cancelled_during_commit(url: str, record_property: RecordProperty) -> None:
    """Issue 9 item 6: a cancellation while COMMIT is in flight. A caller that sees
    ``CancelledError`` finds nothing stored; a caller whose block returned finds it all."""
    landed_in_commit = 0
    async with leaves_no_task(), fresh(url) as db:
        commit = db.backend.commit
        for spins in range(12):
            committing = asyncio.Event()

            async def signalling_commit(raw: object,
                                        committing: asyncio.Event = committing) -> None:
                committing.set()
                await commit(raw)

            db.backend.commit = signalling_commit  # type: ignore[method-assign]
            cancel_requests = -1

            async def load() -> None:
                nonlocal cancel_requests
                async with db.transaction() as tx:
                    await videos.insert_videos(tx, rows(2_000), method="batch")
                task = asyncio.current_task()
                assert task is not None
                cancel_requests = task.cancelling()

            loading = asyncio.create_task(load())
            await committing.wait()
            for _ in range(spins):  # cancel at successive points of the COMMIT round trip
                await asyncio.sleep(0)
            loading.cancel()
            try:
                async with asyncio.timeout(30):
                    await loading
            except asyncio.CancelledError:
                assert await stored(db) == 0
            else:
                assert await stored(db) == 2_000
                landed_in_commit += cancel_requests > 0
            await clear(db)
        db.backend.commit = commit  # type: ignore[method-assign]
        assert landed_in_commit > 0
        record_property("error", "CancelledError or committed")
        await assert_recovered(db)


@pytest.mark.parametrize("url", SERVERS_ONLY, indirect=True)
async def test_server_never_answers(url: str, record_property: RecordProperty) -> None:
    """Issue 9 item 3: a server that accepts TCP and never answers fails the pool's opening."""
    async with leaves_no_task(), HungServer() as hung:
        error = await raises_within(
            connect(through(url, hung.port), timeouts=FAST).__aenter__(), OperationalError)
        record_property("error", type(error).__name__)
    async with fresh(url) as db:
        await assert_recovered(db)


@pytest.mark.parametrize("url", SERVERS_ONLY, indirect=True)
async def test_closed_port(url: str, closed_port: int, record_property: RecordProperty) -> None:
    """Nothing listens: the pool's opening fails at once with a typed, retryable error."""
    async with leaves_no_task():
        error = await raises_within(
            connect(through(url, closed_port), timeouts=FAST).__aenter__(), OperationalError)
    record_property("error", type(error).__name__)


def server_port(url: str) -> tuple[str, int]:
    parsed = parse_url(url)
    return parsed.host or "127.0.0.1", parsed.port or (5432 if parsed.backend == "postgresql"
                                                       else 3306)


@pytest.mark.parametrize("url", SERVERS_ONLY, indirect=True)
async def test_partition_mid_transaction(url: str, record_property: RecordProperty) -> None:
    """Issue 9 item 4: the network stops carrying packets in the middle of a transaction."""
    async with leaves_no_task(), Proxy(*server_port(url)) as proxy, fresh(url) as direct, \
            fresh(through(url, proxy.port), migrate=False) as db:

        async def write() -> None:
            async with db.transaction() as tx:
                await videos.insert_videos(tx, rows(50), method="batch")
                proxy.partition()
                await tx.fetchval("SELECT count(*) FROM videos")

        error = await raises_within(write(), StatementTimeoutError)
        record_property("error", type(error).__name__)
        assert await stored(direct) == 0
        proxy.heal()
        await assert_recovered(db)


@pytest.mark.parametrize("url", SERVERS_ONLY, indirect=True)
async def test_outage_then_restart(url: str, record_property: RecordProperty) -> None:
    """Issue 9 items 9 and 10: the server goes away (connections reset, port closed). Every
    call during the outage is a retryable ``OperationalError``; after it, calls succeed."""
    async with leaves_no_task(), Proxy(*server_port(url)) as proxy, fresh(url) as direct, \
            fresh(through(url, proxy.port), migrate=False) as db:
        await db.fetchval("SELECT 1")
        await proxy.outage()
        seen = set()
        for call in (videos.insert_videos(db, rows(10)), jobs.claim(db, "worker"),
                     jobs.enqueue(db, "render"), videos.insert_videos(db, rows(10))):
            error = await raises_within(call, OperationalError)
            seen.add(type(error).__name__)
        record_property("error", " / ".join(sorted(seen)))
        assert await stored(direct) == 0
        await proxy.restore()
        await assert_recovered(db)


async def ended(admin: Database, alive: str, session: int) -> bool:
    return not await admin.fetchval(alive, (session,))


def kill_behind_the_pools_back(url: str, sessions: list[int]) -> None:
    """Kill ``sessions`` from another thread's event loop while this one is blocked, and wait
    until the server has ended them. The pool has not read the news yet when its next query
    goes out, as when a server restarts between two of its reads."""

    async def run() -> None:
        async with connect(url, migrate=False, min_size=1, max_size=1) as admin:
            for session in sessions:
                await kill(admin, session)
            alive = ("SELECT count(*) FROM pg_stat_activity WHERE pid = ?"
                     if admin.name == "postgresql"
                     else "SELECT count(*) FROM information_schema.processlist WHERE id = ?")
            for session in sessions:
                await until(partial(ended, admin, alive, session), poll_s=0.005)

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, run()).result()


@pytest.mark.parametrize("url", SERVERS_ONLY, indirect=True)
async def test_idle_sessions_killed(url: str, record_property: RecordProperty) -> None:
    """Issue 9 item 7: every idle pooled session is killed; the next queries either succeed or
    raise a typed error (never a raw driver error), and the pool heals."""
    seen = set()
    async with leaves_no_task(), fresh(url, min_size=4, max_size=4) as db:
        for _ in range(5):
            sessions: list[int] = []

            async def hold(gate: asyncio.Barrier, sessions: list[int]) -> None:
                async with db.acquire() as conn:
                    sessions.append(await session_id(conn))
                    await gate.wait()  # all four are open at once, so all four get killed

            gate = asyncio.Barrier(4)
            async with asyncio.TaskGroup() as group:
                for _ in range(4):
                    group.create_task(hold(gate, sessions))
            kill_behind_the_pools_back(url, sessions)
            for _ in range(4):
                try:
                    async with asyncio.timeout(30):
                        await db.fetchval("SELECT 1")
                except DatabaseError as exc:
                    assert isinstance(exc, OperationalError)
                    seen.add(type(exc).__name__)
        record_property("error", " / ".join(sorted(seen)) or "none (recovered)")
        await assert_recovered(db)


@pytest.mark.parametrize("url", ALL, indirect=True)
async def test_runaway_statement(url: str, record_property: RecordProperty) -> None:
    """A statement that never finishes ends at ``statement_s``; its server work is stopped."""
    endless = {
        "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                  "SELECT count(*) FROM c",
        "postgresql": "SELECT pg_sleep(600)",
        "mysql": "SELECT SLEEP(600)",
    }
    async with leaves_no_task(), fresh(url) as db:
        error = await raises_within(db.fetchval(endless[db.name]), StatementTimeoutError)
        record_property("error", type(error).__name__)
        await assert_recovered(db)


ROUNDS, JOBS = 3, 1000  # fewer jobs rarely deadlock on MariaDB: the test would prove nothing


@pytest.mark.parametrize("url", ALL, indirect=True)
async def test_concurrent_claimers(url: str, record_property: RecordProperty) -> None:
    """Issue 9 item 10: eight workers claim the same queue at once, in several rounds.
    Deadlocks and serialization failures are retried inside ``claim``: no error escapes, and
    no job is claimed twice."""
    async with leaves_no_task(), fresh(url, max_size=10) as db:
        for _ in range(ROUNDS):
            async with db.transaction() as tx:
                for n in range(JOBS):
                    await jobs.enqueue(tx, "render", payload={"n": n})
            claimed: list[int] = []

            async def worker(name: str, claimed: list[int] = claimed) -> None:
                while taken := await jobs.claim(db, name, limit=3):
                    claimed.extend(job.id for job in taken)

            async with asyncio.timeout(120), asyncio.TaskGroup() as group:
                for n in range(8):
                    group.create_task(worker(f"worker-{n}"))
            assert len(claimed) == JOBS
            assert len(set(claimed)) == JOBS
            await clear(db)
        retried = sum(1 for event in db.recorder.events("query")
                      if event.error in {"DeadlockError", "LockTimeoutError"})
        record_property("error", f"none escaped ({retried} lock conflicts retried)")
        await assert_recovered(db)
