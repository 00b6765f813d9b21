"""Failure groups, the failure rate, the oldest due job and alert notes on every backend."""

from __future__ import annotations

from pathlib import Path

from opusclip_lib.db import Database, connect, jobs
from opusclip_lib.db import failures as failure_rows
from tests.conftest import overdue_job


async def record(db: Database, job_id: int, exception_type: str, stage: str) -> None:
    await failure_rows.record_failure(db, job_id, fingerprint=f"{exception_type}{stage}"[:16],
                                      exception_type=exception_type, stage=stage,
                                      provider="openai", code="openai.server",
                                      message=f"{stage}: boom")


async def test_failures_group_by_fingerprint_most_frequent_first(db: Database) -> None:
    first = await jobs.enqueue(db, "pipeline")
    second = await jobs.enqueue(db, "pipeline")
    await record(db, first.id, "ServerError", "analyze")
    await record(db, second.id, "ServerError", "analyze")
    await record(db, first.id, "FFmpegError", "render")
    groups = await failure_rows.failure_groups(db)
    assert [(g.exception_type, g.count, g.example_job_id) for g in groups] == [
        ("ServerError", 2, second.id), ("FFmpegError", 1, first.id)]
    assert groups[0].first_seen is not None
    assert groups[0].last_seen >= groups[0].first_seen


async def test_failure_rate_counts_attempts_in_the_window(db: Database) -> None:
    job = await jobs.enqueue(db, "pipeline")
    await jobs.claim(db, "w")
    await record(db, job.id, "ServerError", "analyze")
    assert await failure_rows.failure_rate(db, 60) == (1, 1)


async def test_oldest_pending_job_and_its_age(db: Database) -> None:
    assert await failure_rows.oldest_pending(db) is None
    job = await overdue_job(db, "pipeline", 120)
    oldest = await failure_rows.oldest_pending(db)
    assert oldest is not None
    assert oldest[0] == job.id
    assert oldest[1] >= 119


async def test_a_note_keeps_the_job_status(db: Database) -> None:
    job = await jobs.enqueue(db, "pipeline")
    await failure_rows.note_on_job(db, job.id, "alert queue_age: waited")
    last = (await jobs.job_events(db, job.id))[-1]
    assert (last.from_status, last.to_status, last.message) == (
        "pending", "pending", "alert queue_age: waited")


async def test_the_attempts_window_is_read_through_an_index(tmp_path: Path) -> None:
    """The alert's count of recent attempts must not scan every event ever kept. Checked on
    SQLite: a server's planner scans a table this small whatever its indexes."""
    async with connect(f"sqlite:///{tmp_path / 'plan.db'}") as db:
        plan = await db.fetch("EXPLAIN QUERY PLAN SELECT count(*) FROM job_events "
                              "WHERE to_status = 'downloading' AND created_at >= ?",
                              ("2026-01-01",))
    assert any("job_events_status_time_idx" in row["detail"] for row in plan)
