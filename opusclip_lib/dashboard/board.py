"""What the dashboard shows, read from the database in one go: the snapshot a browser starts
from (and resyncs from after a reconnect), refreshed after each burst of live updates.

Everything is computed from rows the workflow already writes (``processing_jobs``,
``job_events``, ``job_failures``), so the board is right whichever process did the work, and a
missed live message is corrected by the next snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from opusclip_lib.db import Executor, Job, as_datetime, jobs
from opusclip_lib.db import failures as failure_rows
from opusclip_lib.observability import alerts as alert_rules
from opusclip_lib.workflow.config import WorkflowConfig

RUNNING = jobs.STAGES
STALE_AFTER_S: float = next(f.default for f in fields(WorkflowConfig)
                            if f.name == "stale_after_s")  # type: ignore[assignment]
"""The workflow's own bound for a silent job: after it, any worker's reaper requeues the job."""


@dataclass(frozen=True, slots=True)
class BoardSettings:
    """``window_s``: how far back throughput and failure groups look; ``stale_after_s``: a
    running job whose lease (heartbeat) is older than this is stuck (the workflow's reaper
    uses the same bound); ``recent``: rows in the recent-changes and failures tables."""

    window_s: float = 300.0
    stale_after_s: float = STALE_AFTER_S
    recent: int = 20
    rules: alert_rules.AlertRules = field(default_factory=alert_rules.AlertRules)


def _iso(value: Any) -> str | None:
    stamp = as_datetime(value)
    return stamp.isoformat() if isinstance(stamp, datetime) else None


def job_row(job: Job) -> dict[str, Any]:
    """A job as the browser draws it (the same keys as a live update)."""
    return {"job_id": job.id, "video_id": job.video_id, "kind": job.kind, "status": job.status,
            "stage": job.stage, "progress": job.progress, "worker": job.locked_by,
            "error_code": job.error_code, "error_message": job.error_message,
            "at": _iso(job.updated_at)}


async def workers(ex: Executor, window_s: float) -> list[dict[str, Any]]:
    """Per worker: jobs it holds now, jobs it completed in the last ``window_s`` seconds and
    that as a rate per minute, and when it last changed a job."""
    since = ex.backend.now_plus()
    done = await ex.fetch(
        "SELECT worker, count(*) AS n, max(created_at) AS last_at FROM job_events "
        f"WHERE to_status = 'completed' AND worker IS NOT NULL AND created_at >= {since} "
        "GROUP BY worker", (-float(window_s),), name="dashboard throughput")
    held = await ex.fetch(
        "SELECT locked_by AS worker, count(*) AS n, max(updated_at) AS last_at "
        f"FROM processing_jobs WHERE status IN ({', '.join('?' * len(RUNNING))}) "
        "AND locked_by IS NOT NULL GROUP BY locked_by", RUNNING, name="dashboard running")
    board: dict[str, dict[str, Any]] = {}
    for row in done:
        board[row["worker"]] = {"worker": row["worker"], "running": 0, "completed": int(row["n"]),
                                "per_minute": int(row["n"]) * 60 / window_s,
                                "last_at": _iso(row["last_at"])}
    for row in held:
        entry = board.setdefault(row["worker"], {"worker": row["worker"], "completed": 0,
                                                 "per_minute": 0.0, "last_at": None})
        entry["running"] = int(row["n"])
        last = _iso(row["last_at"])
        entry["last_at"] = max(filter(None, (entry["last_at"], last)), default=None)
    return sorted(board.values(), key=lambda w: (-w["completed"], -w["running"], w["worker"]))


async def stuck_jobs(ex: Executor, stale_after_s: float) -> list[dict[str, Any]]:
    """Running jobs with no live lease: no heartbeat for ``stale_after_s`` seconds."""
    rows = await ex.fetch(
        f"SELECT *, {ex.backend.now} AS now FROM processing_jobs "
        f"WHERE status IN ({', '.join('?' * len(RUNNING))}) AND (heartbeat_at IS NULL OR "
        f"heartbeat_at < {ex.backend.now_plus()}) ORDER BY heartbeat_at, id LIMIT 50",
        (*RUNNING, -float(stale_after_s)), name="dashboard stuck jobs")
    stuck = []
    for row in rows:
        now, beat = as_datetime(row.pop("now")), as_datetime(row["heartbeat_at"])
        silent = (now - beat).total_seconds() if now and beat else None
        stuck.append(job_row(Job.from_row(row)) | {"silent_s": silent})
    return stuck


async def recent_failures(ex: Executor, limit: int) -> list[dict[str, Any]]:
    """The latest jobs that failed for good, with the stage they failed in and why."""
    rows = await ex.fetch("SELECT * FROM processing_jobs WHERE status = 'failed' "
                          "ORDER BY finished_at DESC, id DESC LIMIT ?", (int(limit),),
                          name="dashboard failures")
    return [job_row(Job.from_row(row)) for row in rows]


async def recent_changes(ex: Executor, limit: int) -> list[dict[str, Any]]:
    """The jobs changed last, newest first: the live table's starting rows."""
    rows = await ex.fetch("SELECT * FROM processing_jobs ORDER BY updated_at DESC, id DESC "
                          "LIMIT ?", (int(limit),), name="dashboard recent jobs")
    return [job_row(Job.from_row(row)) for row in rows]


DEFAULTS = BoardSettings()


async def snapshot(ex: Executor, settings: BoardSettings = DEFAULTS) -> dict[str, Any]:
    """The whole board as JSON-ready data."""
    oldest = await failure_rows.oldest_pending(ex)
    stuck = await stuck_jobs(ex, settings.stale_after_s)
    alerts = [{"name": a.name, "summary": a.summary, "job_id": a.job_id}
              for a in await alert_rules.evaluate(ex, settings.rules)]
    alerts += [{"name": "stuck_job", "job_id": job["job_id"],
                "summary": f"job {job['job_id']} is {job['status']} but its worker "
                           f"({job['worker'] or 'none'}) has sent no heartbeat for "
                           + (f"{job['silent_s']:.0f} s" if job["silent_s"] is not None
                              else "ever")}
               for job in stuck]
    groups = await failure_rows.failure_groups(ex, within_s=settings.window_s, limit=5)
    return {
        "counts": await jobs.queue_counts(ex),
        "workers": await workers(ex, settings.window_s),
        "oldest_pending": None if oldest is None else {"job_id": oldest[0], "age_s": oldest[1]},
        "failures": await recent_failures(ex, settings.recent),
        "failure_groups": [{"exception_type": g.exception_type, "stage": g.stage,
                            "provider": g.provider, "count": g.count,
                            "last_seen": _iso(g.last_seen), "example_job_id": g.example_job_id}
                           for g in groups],
        "stuck": stuck,
        "alerts": alerts,
        "recent": await recent_changes(ex, settings.recent),
        "window_s": settings.window_s,
    }
