"""The transactional outbox: a job and the wake-up that announces it, committed together.

A broker is not part of the database's transaction, so publishing from ``enqueue`` could lose
the message (a crash after the commit) or announce a job that was rolled back. Instead the
wake-up is a row in ``job_outbox``, written in the job's transaction; a relay publishes unsent
rows and marks them sent. A crash between publishing and marking sends the wake-up again
(at least once), which is harmless: a wake-up only makes a worker try to claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opusclip_lib.db import jobs, validate
from opusclip_lib.db.connection import Executor
from opusclip_lib.db.models import Job, as_json
from opusclip_lib.db.repository import IN_CHUNK


@dataclass(frozen=True, slots=True)
class Wakeup:
    """An unsent outbox row: which job to announce, and the trace it was enqueued in."""

    id: int
    job_id: int
    traceparent: str | None


async def enqueue(ex: Executor, kind: str, *, video_id: int | None = None, payload: Any = None,
                  idempotency_key: str | None = None, max_attempts: int = 3) -> Job:
    """:func:`opusclip_lib.db.jobs.enqueue` plus its outbox row, in one transaction.

    A job that already existed (same ``idempotency_key``) gets a new wake-up only while it is
    still pending: announcing a finished or running job would wake a worker for nothing.
    """
    async with ex.transaction() as tx:
        job = await jobs.enqueue(tx, kind, video_id=video_id, payload=payload,
                                 idempotency_key=idempotency_key, max_attempts=max_attempts)
        if job.status == "pending":
            await tx.execute("INSERT INTO job_outbox (job_id) VALUES (?)", (job.id,),
                             name="outbox add")
    return job


async def take_unsent(tx: Executor, *, limit: int) -> list[Wakeup]:
    """Up to ``limit`` unsent wake-ups, oldest first, locked against other relays until ``tx``
    ends (call it inside a transaction, then :func:`mark_sent` what was published)."""
    rows = await tx.fetch(
        "SELECT o.id, o.job_id, j.payload FROM job_outbox o "
        "JOIN processing_jobs j ON j.id = o.job_id WHERE o.sent_at IS NULL "
        f"ORDER BY o.id LIMIT ?{_lock(tx)}",
        (min(validate.count(limit, name="limit"), IN_CHUNK),), name="outbox take")
    wakeups = []
    for row in rows:
        payload = as_json(row["payload"])
        trace = payload.get("traceparent") if isinstance(payload, dict) else None
        wakeups.append(Wakeup(int(row["id"]), int(row["job_id"]),
                              trace if isinstance(trace, str) else None))
    return wakeups


def _lock(tx: Executor) -> str:
    """``FOR UPDATE OF o SKIP LOCKED`` on PostgreSQL (the job row stays free for claims);
    MariaDB locks both rows of the join; SQLite has one writer anyway."""
    if not tx.backend.skip_locked:
        return ""
    return " FOR UPDATE OF o SKIP LOCKED" if tx.backend.name == "postgresql" else \
        tx.backend.skip_locked


async def mark_sent(ex: Executor, outbox_ids: list[int]) -> None:
    if not outbox_ids:
        return
    marks = ", ".join("?" * len(outbox_ids))
    await ex.execute(f"UPDATE job_outbox SET sent_at = {ex.backend.now} WHERE id IN ({marks})",
                     outbox_ids, name="outbox sent")


async def unsent_count(ex: Executor) -> int:
    """Wake-ups waiting for the relay (e.g. while the broker is down)."""
    return int(await ex.fetchval("SELECT count(*) FROM job_outbox WHERE sent_at IS NULL",
                                 name="outbox depth"))
