"""What travels on the feed: one job's state after a committed change, as a JSON-able dict.

The workflow's ``on_change`` hook sends at least ``job_id, video_id, kind, status, stage,
progress, at``; the feed adds ``published_at`` (epoch seconds, stamped by the publisher) and,
on delivery, ``latency_s``. Wall-clock stamps because publisher and subscriber may be different
processes on one machine.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from opusclip_lib.db import Executor, Job, as_datetime, jobs

Update = dict[str, Any]


def job_update(job: Job) -> Update:
    """The update a job row stands for (what the workflow would publish for it)."""
    return {"job_id": job.id, "video_id": job.video_id, "kind": job.kind, "status": job.status,
            "stage": job.stage, "progress": job.progress, "at": job.updated_at}


async def snapshot(ex: Executor, *, limit: int = 10_000) -> list[Update]:
    """Every job's current state, to seed a live table before the feed's first update."""
    return [job_update(job) for job in await jobs.list_jobs(ex, limit=limit)]


def _json_default(value: object) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in a feed update")


def encode(update: Update) -> str:
    return json.dumps(update, default=_json_default, separators=(",", ":"))


def decode(payload: str | bytes) -> Update:
    """An update from the wire; ``ValueError`` if the payload is not a JSON object."""
    update = json.loads(payload)
    if not isinstance(update, dict):
        raise ValueError(f"a feed update is a JSON object, got {type(update).__name__}")
    update["at"] = as_datetime(update.get("at"))
    return update
