"""Failures grouped by fingerprint, and the alerts raised about them: the queries error
tracking needs.

Each failure of a job is one row of ``job_failures`` (schema migration 4) (its fingerprint:
exception type, stage and provider). A *group* is those rows by fingerprint: how many, first and
last seen, and the latest job as an example, so a storm of one error is one line, not a thousand.
An alert is written to ``job_events`` as a note on a job (``from_status = to_status``), so a
job's history shows the alerts its failure raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opusclip_lib.db.connection import Executor
from opusclip_lib.db.models import _Row, as_datetime
from opusclip_lib.db.schema import NAME_MAX


@dataclass(frozen=True, slots=True)
class FailureGroup(_Row):
    fingerprint: str
    exception_type: str
    stage: str | None
    provider: str | None
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    example_job_id: int


async def record_failure(ex: Executor, job_id: int, *, fingerprint: str, exception_type: str,
                         stage: str | None, provider: str | None, code: str | None,
                         message: str | None) -> None:
    await ex.execute(
        "INSERT INTO job_failures (job_id, fingerprint, exception_type, stage, provider, code, "
        "message) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (job_id, fingerprint, exception_type[:NAME_MAX], stage, provider,
         None if code is None else code[:NAME_MAX], message), name="record failure")


async def failure_groups(ex: Executor, *, within_s: float | None = None,
                         limit: int = 50) -> list[FailureGroup]:
    """Groups, most frequent first (only failures of the last ``within_s`` seconds if given)."""
    where = ""
    params: tuple[float, ...] = ()
    if within_s is not None:
        where, params = f"WHERE created_at >= {ex.backend.now_plus()} ", (-float(within_s),)
    rows = await ex.fetch(
        "SELECT fingerprint, exception_type, stage, provider, count(*) AS n, "
        "min(created_at) AS first_seen, max(created_at) AS last_seen, "
        f"max(job_id) AS example_job_id FROM job_failures {where}"
        "GROUP BY fingerprint, exception_type, stage, provider "
        "ORDER BY count(*) DESC, max(created_at) DESC LIMIT ?", (*params, int(limit)),
        name="failure groups")
    return [FailureGroup.from_row(row | {"count": int(row["n"]),
                                         "example_job_id": int(row["example_job_id"])})
            for row in rows]


async def failure_rate(ex: Executor, within_s: float) -> tuple[int, int]:
    """(failures, job attempts started) over the last ``within_s`` seconds."""
    since = ex.backend.now_plus()
    failed = await ex.fetchval(f"SELECT count(*) FROM job_failures WHERE created_at >= {since}",
                               (-float(within_s),), name="failures in window")
    started = await ex.fetchval(
        f"SELECT count(*) FROM job_events WHERE to_status = 'downloading' AND created_at >= "
        f"{since}", (-float(within_s),), name="attempts in window")
    return int(failed or 0), int(started or 0)


async def oldest_pending(ex: Executor) -> tuple[int, float] | None:
    """(job id, seconds it has been due) of the job waiting longest to be claimed."""
    row = await ex.fetchrow(
        f"SELECT id, run_after, {ex.backend.now} AS now FROM processing_jobs "
        "WHERE status = 'pending' AND run_after <= " + ex.backend.now
        + " ORDER BY run_after, id LIMIT 1", name="oldest pending job")
    if row is None:
        return None
    due, now = as_datetime(row["run_after"]), as_datetime(row["now"])
    assert due is not None
    assert now is not None
    return int(row["id"]), max((now - due).total_seconds(), 0.0)


async def note_on_job(ex: Executor, job_id: int, message: str) -> None:
    """A ``job_events`` row that changes nothing: the job's status stays, the note is kept."""
    await ex.execute(
        "INSERT INTO job_events (job_id, from_status, to_status, message) "
        "SELECT id, status, status, ? FROM processing_jobs WHERE id = ?", (message, job_id),
        name="job note")
