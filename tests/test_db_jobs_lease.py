"""A worker that lost its job hears ``LeaseLostError`` from ``advance()`` and ``fail()``, whatever
became of the job (reaped, claimed by another worker, cancelled, finished), and also when that
happened while its own move was waiting for the row; ``InvalidTransitionError`` is left for a move
the state machine forbids. On every backend, and the mid-move race on the servers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from opusclip_lib.db import (
    Database,
    Executor,
    InvalidTransitionError,
    LeaseLostError,
    clear,
    connect,
    jobs,
)
from tests.test_db_jobs import age_heartbeat
from tests.waiting import until

STALE = "worker-a"
SUCCESSOR = "worker-b"


async def reap(db: Executor, job_id: int) -> None:
    [reaped] = await jobs.reap_stale(db, stale_after_s=60)
    assert (reaped.id, reaped.status) == (job_id, "pending")


async def reap_and_reclaim(db: Executor, job_id: int) -> None:
    await reap(db, job_id)
    [retaken] = await jobs.claim(db, SUCCESSOR)
    assert retaken.id == job_id


async def reclaim_and_complete(db: Executor, job_id: int) -> None:
    await reap_and_reclaim(db, job_id)
    for status in ("transcribing", "analyzing", "rendering", "completed"):
        await jobs.advance(db, job_id, status, worker=SUCCESSOR)


async def cancel(db: Executor, job_id: int) -> None:
    await jobs.cancel(db, job_id, reason="the user gave up")


LOSSES: dict[str, tuple[Callable[[Executor, int], Awaitable[None]], str]] = {
    "reaped": (reap, f"is pending and held by nobody, not by '{STALE}'"),
    "reaped and reclaimed": (reap_and_reclaim, f"is held by '{SUCCESSOR}', not '{STALE}'"),
    "reclaimed and completed": (reclaim_and_complete,
                                f"is completed and held by nobody, not by '{STALE}'"),
    "cancelled": (cancel, f"is cancelled and held by nobody, not by '{STALE}'"),
}


async def transcribing_job(db: Database) -> int:
    """A job ``STALE`` claimed and moved on once (next: ``analyzing``), then went silent."""
    job = await jobs.enqueue(db, "pipeline")
    await jobs.claim(db, STALE)
    await jobs.advance(db, job.id, "transcribing", worker=STALE, stage="transcribing")
    await age_heartbeat(db, job.id, 3600)
    return job.id


@pytest.mark.parametrize("loss", LOSSES)
async def test_a_stale_worker_hears_lease_lost_whatever_became_of_its_job(
        db: Database, loss: str) -> None:
    job_id = await transcribing_job(db)
    lose, message = LOSSES[loss]
    await lose(db, job_id)
    before = await jobs.get_job(db, job_id)
    events = await jobs.job_events(db, job_id)
    with pytest.raises(LeaseLostError, match=message):
        await jobs.advance(db, job_id, "analyzing", worker=STALE, stage="analyzing")
    with pytest.raises(LeaseLostError, match=message):
        await jobs.fail(db, job_id, code="boom", message="too late", worker=STALE,
                        retryable=True)
    assert await jobs.get_job(db, job_id) == before  # nothing written over the successor
    assert await jobs.job_events(db, job_id) == events


async def test_a_forbidden_move_of_a_held_or_never_claimed_job_stays_invalid(
        db: Database) -> None:
    job_id = await transcribing_job(db)
    with pytest.raises(InvalidTransitionError,
                       match="cannot go from transcribing to rendering") as held:
        await jobs.advance(db, job_id, "rendering", worker=STALE)
    never_claimed = await jobs.enqueue(db, "pipeline")
    with pytest.raises(InvalidTransitionError,
                       match="cannot go from pending to analyzing") as unheld:
        await jobs.advance(db, never_claimed.id, "analyzing", worker=STALE)
    assert type(held.value) is InvalidTransitionError
    assert type(unheld.value) is InvalidTransitionError
    assert (await jobs.get_job(db, job_id)).status == "transcribing"


@pytest.fixture(params=["postgres", "mysql"])
def server_db_url(request: pytest.FixtureRequest,
                  scratch_namespaces: Callable[[str], str]) -> str:
    return scratch_namespaces(request.getfixturevalue(f"{request.param}_url"))


SESSION_ID = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}
WAITING_FOR = {  # sessions waiting for a row lock held by session ``?``
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))",
    "mysql": "SELECT count(*) FROM information_schema.innodb_lock_waits w "
             "JOIN information_schema.innodb_trx t ON t.trx_id = w.blocking_trx_id "
             "WHERE t.trx_mysql_thread_id = ?",
}


async def someone_waits_for(db: Database, session: int) -> None:
    async with asyncio.timeout(5):
        # InnoDB refreshes its lock tables only after 0.1 s unread.
        await until(lambda: db.fetchval(WAITING_FOR[db.name], (session,)), poll_s=0.15)


async def test_a_reap_committed_while_advance_waits_for_the_row_is_lease_lost(
        server_db_url: str) -> None:
    """The stale worker reads its job as still held, then its conditional UPDATE waits for the
    reaper's row lock and, once the reaper commits, matches nothing: the re-read tells why."""
    async with connect(server_db_url, min_size=1, max_size=4) as db:
        await clear(db)
        job_id = await transcribing_job(db)

        async def stale_advance() -> None:
            with pytest.raises(LeaseLostError, match=f"held by '{SUCCESSOR}', not '{STALE}'"):
                await jobs.advance(db, job_id, "analyzing", worker=STALE)

        async with asyncio.TaskGroup() as group, db.transaction() as reaper:
            session = await reaper.fetchval(SESSION_ID[db.name])
            await reap_and_reclaim(reaper, job_id)
            group.create_task(stale_advance())
            await someone_waits_for(db, session)
        queries = [event.name for event in db.recorder.events("query")]
        assert "re-read job" in queries  # the UPDATE matched nothing: the race, not the check
        retaken = await jobs.get_job(db, job_id)
        assert (retaken.status, retaken.locked_by) == ("downloading", SUCCESSOR)
