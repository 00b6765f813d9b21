"""The job queue on every backend: exactly-once claims under concurrency, the state machine,
retries with backoff, and the reaper."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import pytest

from opusclip_lib.db import (
    Database,
    InvalidTransitionError,
    Job,
    LeaseLostError,
    NotFoundError,
    connect,
    jobs,
    videos,
)
from tests.waiting import until

PIPELINE = ("downloading", "transcribing", "analyzing", "rendering", "completed")


async def test_enqueue_is_idempotent_with_a_key(db: Database) -> None:
    video = await videos.insert_video(db, "jobVideo001")
    first = await jobs.enqueue(db, "pipeline", video_id=video.id, payload={"clips": 3},
                               idempotency_key="pipeline:jobVideo001")
    again = await jobs.enqueue(db, "pipeline", video_id=video.id, payload={"clips": 9},
                               idempotency_key="pipeline:jobVideo001")
    assert again == first
    assert first.payload == {"clips": 3}
    assert first.status == "pending"
    assert first.attempts == 0
    other = await jobs.enqueue(db, "pipeline", video_id=video.id)
    assert other.id != first.id
    assert await jobs.queue_counts(db) == {"pending": 2}


async def test_statuses_counts_history_and_events_after(db: Database) -> None:
    video = await videos.insert_video(db, "jobVideo002")
    first = await jobs.enqueue(db, "pipeline", video_id=video.id)
    second = await jobs.enqueue(db, "pipeline")
    other = await jobs.enqueue(db, "other")
    start = await jobs.last_event_id(db)
    [claimed] = await jobs.claim(db, "worker-1", kinds=["pipeline"], limit=1)
    assert claimed.id == first.id
    ids = [first.id, second.id, other.id, 10**9]
    assert await jobs.job_statuses(db, ids) == {
        first.id: "downloading", second.id: "pending", other.id: "pending"}
    assert await jobs.count_by_status(db, ids) == {"downloading": 1, "pending": 2}
    history = await jobs.status_history(db, "pipeline")
    assert [(row["job_id"], row["to_status"]) for row in history] == [
        (first.id, "pending"), (first.id, "downloading"), (second.id, "pending")]
    assert history[0]["youtube_id"] == "jobVideo002"
    assert history[2]["youtube_id"] is None
    [event] = await jobs.events_after(db, start, limit=10)
    assert (event["job_id"], event["from_status"], event["status"], event["kind"]) == (
        first.id, "pending", "downloading", "pipeline")
    assert await jobs.last_event_id(db) == event["event_id"]
    assert await jobs.events_after(db, event["event_id"], limit=10) == []


async def test_job_walks_the_pipeline_and_logs_every_step(db: Database) -> None:
    job = await jobs.enqueue(db, "pipeline", payload={"url": "https://youtu.be/x"})
    [claimed] = await jobs.claim(db, "worker-1")
    assert (claimed.id, claimed.status, claimed.locked_by, claimed.attempts) == (
        job.id, "downloading", "worker-1", 1)
    assert claimed.heartbeat_at is not None
    for status in PIPELINE[1:]:
        await jobs.heartbeat(db, job.id, "worker-1", progress=0.5, stage=f"{status} step")
        job = await jobs.advance(db, job.id, status, worker="worker-1", stage=status)
    assert job.status == "completed"
    assert job.progress == 1.0
    assert job.finished_at is not None
    assert job.locked_by is None
    events = await jobs.job_events(db, job.id)
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "pending"), ("pending", "downloading"), *pairwise(PIPELINE)]


async def test_complete_finishes_a_batch_it_holds_in_one_call(db: Database) -> None:
    for _ in range(4):
        await jobs.enqueue(db, "empty")
    claimed = await jobs.claim(db, "worker-1", kinds=["empty"], limit=3)
    walked = await jobs.advance(db, claimed[0].id, "transcribing", worker="worker-1")
    reaped = await jobs.cancel(db, claimed[1].id, reason="gone")
    [unclaimed] = await jobs.list_jobs(db, status="pending")
    ids = [job.id for job in reversed(claimed)] + [unclaimed.id]
    done = await jobs.complete(db, ids, worker="worker-1")
    assert [job.id for job in done] == [claimed[2].id, walked.id]  # in the order asked
    assert all(job.status == "completed" and job.locked_by is None and job.progress == 1.0
               and job.finished_at is not None for job in done)
    assert (await jobs.get_job(db, reaped.id)).status == "cancelled"
    assert (await jobs.get_job(db, unclaimed.id)).status == "pending"
    events = await jobs.job_events(db, walked.id)
    assert [(e.from_status, e.to_status, e.worker) for e in events][-1] == (
        "transcribing", "completed", "worker-1")
    assert await jobs.complete(db, ids, worker="worker-1") == []  # nothing held any more
    assert await jobs.complete(db, [], worker="worker-1") == []


async def test_invalid_transitions_raise(db: Database) -> None:
    job = await jobs.enqueue(db, "pipeline")
    with pytest.raises(InvalidTransitionError, match="cannot go from pending to transcribing"):
        await jobs.advance(db, job.id, "transcribing", worker="w")
    await jobs.claim(db, "w")
    with pytest.raises(InvalidTransitionError, match="cannot go from downloading to rendering"):
        await jobs.advance(db, job.id, "rendering", worker="w")
    with pytest.raises(LeaseLostError, match="held by 'w', not 'intruder'"):
        await jobs.advance(db, job.id, "transcribing", worker="intruder")
    with pytest.raises(InvalidTransitionError, match="forward only"):
        await jobs.advance(db, job.id, "failed", worker="w")
    await jobs.cancel(db, job.id, reason="user gave up")
    with pytest.raises(InvalidTransitionError, match="nothing \\(finished\\)"):
        await jobs.cancel(db, job.id)
    with pytest.raises(LeaseLostError):
        await jobs.heartbeat(db, job.id, "w")  # the worker learns it was cancelled
    with pytest.raises(NotFoundError):
        await jobs.cancel(db, 10**9)
    assert (await jobs.get_job(db, job.id)).status == "cancelled"


async def test_concurrent_claims_hand_out_each_job_once(db_url: str) -> None:
    async with connect(db_url, min_size=8, max_size=8) as database:
        created = [await jobs.enqueue(database, "render") for _ in range(40)]
        seen: list[tuple[str, int]] = []
        start = asyncio.Barrier(8)

        async def worker(name: str) -> None:
            await start.wait()  # all claim at the same moment
            while batch := await jobs.claim(database, name, kinds=["render"], limit=3):
                assert len(batch) <= 3
                seen.extend((name, job.id) for job in batch)
                await asyncio.sleep(0.005)  # "work" on the batch

        await asyncio.gather(*(worker(f"w{n}") for n in range(8)))
        claimed = [job_id for _, job_id in seen]
        assert sorted(claimed) == sorted(job.id for job in created)  # each exactly once
        assert len({name for name, _ in seen}) > 1  # and the work really was shared
        rows = await jobs.list_jobs(database, status="downloading", limit=100)
        assert {job.id: job.locked_by for job in rows} == {job_id: name for name, job_id in seen}


async def test_claim_respects_kinds_and_delay(db: Database) -> None:
    await jobs.enqueue(db, "render", delay_s=60)
    transcribe = await jobs.enqueue(db, "transcribe")
    assert await jobs.claim(db, "w", kinds=["render"]) == []
    assert [job.id for job in await jobs.claim(db, "w", limit=5)] == [transcribe.id]


async def claim_when_due(database: Database, worker: str, timeout_s: float = 5.0) -> list[Job]:
    """Poll like a worker would, so the test does not depend on exact timing."""
    claimed: list[Job] = []

    async def claim() -> bool:
        claimed.extend(await jobs.claim(database, worker))
        return bool(claimed)

    async with asyncio.timeout(timeout_s):
        await until(claim, poll_s=0.02)
    return claimed


async def age_heartbeat(database: Database, job_id: int, seconds: float) -> None:
    """Pretend the worker's last heartbeat was ``seconds`` ago (instead of sleeping)."""
    await database.execute(
        f"UPDATE processing_jobs SET heartbeat_at = {database.backend.now_plus()} WHERE id = ?",
        (-seconds, job_id))


async def test_retryable_failure_backs_off_then_fails_for_good(db: Database) -> None:
    slow = await jobs.enqueue(db, "pipeline")
    await jobs.claim(db, "w")
    retried = await jobs.fail(db, slow.id, worker="w", code="http_503", message="try later",
                              retryable=True, backoff_s=60)
    assert (retried.status, retried.error_code, retried.locked_by) == ("pending", "http_503",
                                                                       None)
    assert (retried.run_after - retried.updated_at).total_seconds() > 55
    assert await jobs.claim(db, "w") == []  # not due for a minute

    quick = await jobs.enqueue(db, "pipeline", max_attempts=2)
    [first] = await jobs.claim(db, "w")
    assert first.id == quick.id
    await jobs.fail(db, quick.id, worker="w", code="timeout", message="x", retryable=True,
                    backoff_s=0.05)
    [again] = await claim_when_due(db, "w")
    assert (again.id, again.attempts) == (quick.id, 2)
    final = await jobs.fail(db, quick.id, worker="w", code="timeout", message="still",
                            retryable=True)
    assert final.status == "failed"
    assert final.finished_at is not None  # no attempts left


async def test_reaper_requeues_stale_jobs_only(db: Database) -> None:
    stale = await jobs.enqueue(db, "pipeline")
    await jobs.claim(db, "crashed-worker")
    alive = await jobs.enqueue(db, "pipeline")
    await jobs.claim(db, "healthy-worker")
    await age_heartbeat(db, stale.id, 3600)

    reaped = await jobs.reap_stale(db, stale_after_s=60)
    assert [(job.id, job.status, job.error_code) for job in reaped] == [
        (stale.id, "pending", "stale_heartbeat")]
    assert (await jobs.get_job(db, alive.id)).status == "downloading"
    with pytest.raises(LeaseLostError):
        await jobs.heartbeat(db, stale.id, "crashed-worker")

    [retaken] = await jobs.claim(db, "new-worker")
    assert (retaken.id, retaken.attempts) == (stale.id, 2)
    assert await jobs.reap_stale(db, stale_after_s=60) == []


async def test_reaper_fails_jobs_without_attempts_left(db: Database) -> None:
    job = await jobs.enqueue(db, "pipeline", max_attempts=1)
    await jobs.claim(db, "crashed-worker")
    await age_heartbeat(db, job.id, 3600)
    [reaped] = await jobs.reap_stale(db, stale_after_s=60)
    assert (reaped.id, reaped.status) == (job.id, "failed")


async def test_defer_hands_the_job_back_without_spending_its_attempt(db: Database) -> None:
    job = await jobs.enqueue(db, "pipeline", max_attempts=1)
    [claimed] = await jobs.claim(db, "worker-1")
    assert claimed.attempts == 1
    deferred = await jobs.defer(db, job.id, worker="worker-1", delay_s=30.0,
                                code="stability.circuit_open", message="thumbnail: open")
    assert (deferred.status, deferred.attempts, deferred.locked_by) == ("pending", 0, None)
    assert deferred.run_after is not None
    assert deferred.updated_at is not None
    assert (deferred.run_after - deferred.updated_at).total_seconds() == pytest.approx(30, abs=1)
    assert await jobs.claim(db, "worker-2") == []  # not due before the breaker half-opens
    with pytest.raises(LeaseLostError):  # it is nobody's now
        await jobs.defer(db, job.id, worker="worker-1", delay_s=1.0, code="x", message="x")
