"""Progress notes in a job's history: a ``job_events`` row that keeps the job's status.

A long stage (a download) says how far it got, durably, without moving the job: the note is an
event from the status to itself, so the status timeline keeps its shape and a feed that polls
``job_events`` sees the progress too.
"""

from __future__ import annotations

from opusclip_lib.db.connection import Executor


async def record_progress(ex: Executor, job_id: int, status: str, message: str, *,
                          worker: str | None = None) -> None:
    await ex.execute("INSERT INTO job_events (job_id, from_status, to_status, worker, message) "
                     "VALUES (?, ?, ?, ?, ?)", (job_id, status, status, worker, message),
                     name="job progress")
