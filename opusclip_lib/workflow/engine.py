"""Runs videos through the stages as jobs: one ``processing_jobs`` row per video, resumable.

A job's status follows the queue's state machine (``pending -> downloading -> transcribing ->
analyzing -> rendering -> completed``); its ``stage`` column names the workflow stage running
(:func:`~opusclip_lib.workflow.stages.plan`). Each stage commits its rows with the job's next
move in one transaction, and the job's lease (``locked_by`` plus a heartbeat) guards every
commit, so a worker that lost the job (reaped, cancelled) can never write over its successor.

After a crash nothing is redone that was finished: the reaper puts the silent job back to
``pending``, the next claim walks it through the stages again, and each stage sees its row and
artifact and skips (see :mod:`opusclip_lib.workflow.stages`). A failure ends in ``failed`` with
its stage, code and message, or back in ``pending`` with backoff when retrying may help; a
cancelled worker hands its jobs back to ``pending``. No exit leaves a job in a running status
except a killed process, and that is what the reaper is for.

``on_change(update)`` is awaited after every committed change of a job's status or stage, with
a :class:`JobUpdate`: the hook a live status feed plugs into.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypedDict

from opusclip_lib.db import (
    Database,
    DatabaseError,
    Executor,
    InvalidTransitionError,
    Job,
    LeaseLostError,
    OperationalError,
    every,
    jobs,
    validate,
    videos,
)
from opusclip_lib.metrics import Recorder
from opusclip_lib.observability import carrier
from opusclip_lib.observability.errors_tracking import track_failure
from opusclip_lib.observability.instrument import stage_scope, traced_job
from opusclip_lib.pipelines import task_scope
from opusclip_lib.workflow.config import KIND, WorkflowConfig
from opusclip_lib.workflow.errors import Failure, WorkflowError, classify
from opusclip_lib.workflow.files import VideoFiles, clean_partials
from opusclip_lib.workflow.outage import ride_out
from opusclip_lib.workflow.services import Services
from opusclip_lib.workflow.stages import Stage, VideoRun, plan

logger = logging.getLogger(__name__)


class JobUpdate(TypedDict):
    """What changed, as the monitoring feed publishes it (JSON-ready).

    ``kind`` and ``at`` (ISO-8601 UTC, the job row's ``updated_at``) are what the polling feed
    reads from ``job_events``, so a pushed update shows the same.
    """

    job_id: int
    video_id: int | None
    youtube_id: str | None
    kind: str
    status: str
    stage: str | None
    progress: float
    attempts: int
    worker: str | None
    error_code: str | None
    error_message: str | None
    at: str | None


OnChange = Callable[[JobUpdate], Awaitable[None]]


def worker_name() -> str:
    """Unique per process and run: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def job_update(job: Job) -> JobUpdate:
    youtube_id = job.payload.get("youtube_id") if isinstance(job.payload, dict) else None
    at = job.updated_at.isoformat() if job.updated_at is not None else None
    return JobUpdate(job_id=job.id, video_id=job.video_id, youtube_id=youtube_id, kind=job.kind,
                     status=job.status, stage=job.stage, progress=job.progress,
                     attempts=job.attempts, worker=job.locked_by, error_code=job.error_code,
                     error_message=job.error_message, at=at)


async def _early(name: str, work: Callable[[VideoRun], Awaitable[None]],
                 run: VideoRun) -> Exception | None:
    """A stage's early work (:attr:`Stage.early`), its error kept for the stage to raise in its
    own scope: failing here would cancel the render beside it and blame the wrong stage."""
    try:
        with stage_scope(f"{name} (early)"):
            await work(run)
    except Exception as error:  # noqa: BLE001 - every failure is the stage's to raise and classify
        return error
    return None


def _on_stage(job: Job, stage: str, progress: float) -> Job:
    """``job`` after a heartbeat moved its stage: the heartbeat returns no row, so the change's
    time is this clock's (a moment after the database's)."""
    return replace(job, stage=stage, progress=progress, updated_at=datetime.now(UTC))


@dataclass(slots=True)
class _Lease:
    """The job as this worker last committed it (what a failure report starts from)."""

    job: Job


class Engine:
    """Enqueue, claim, process and reap workflow jobs for one worker.

    ``recorder`` gets one ``kind="stage"`` event per stage run (labels ``video``, ``job``,
    ``attempt``, ``worker``): the stage timeline of every video.
    """

    def __init__(self, db: Database, services: Services, config: WorkflowConfig, *,
                 worker: str | None = None, on_change: OnChange | None = None,
                 recorder: Recorder | None = None) -> None:
        self.db = db
        self.services = services
        self.config = config
        self.worker = worker or worker_name()
        self.on_change = on_change
        self.recorder = recorder

    # --- the queue -----------------------------------------------------------------------------

    async def enqueue(self, youtube_ids: Iterable[str]) -> list[Job]:
        """A video row (status ``queued``) and a job per id; ids already known keep theirs.

        Optimised: all rows and jobs in one transaction. Naive: one commit per statement.
        ``InvalidYouTubeIdError`` (nothing stored) if any id cannot be a YouTube id.
        """
        ids = validate.youtube_ids(youtube_ids)  # before any query sees them
        if self.config.mode.batched:
            async with self.db.transaction() as tx:
                enqueued = await self._enqueue(tx, ids)
        else:
            enqueued = await self._enqueue(self.db, ids)
        for job in enqueued:
            await self._notify(job)
        return enqueued

    async def _enqueue(self, ex: Executor, ids: list[str]) -> list[Job]:
        known = await videos.videos_by_youtube_id(ex, ids)
        missing = [{"youtube_id": youtube_id, "status": "queued"} for youtube_id in ids
                   if youtube_id not in known]
        if self.config.mode.batched:
            await videos.insert_videos(ex, missing)
            known = await videos.videos_by_youtube_id(ex, ids)
        else:
            for row in missing:
                known[row["youtube_id"]] = await videos.insert_video(ex, **row)
        return [await jobs.enqueue(ex, KIND, video_id=known[youtube_id].id,
                                   payload={"youtube_id": youtube_id, **carrier()},
                                   idempotency_key=f"{KIND}:{youtube_id}",
                                   max_attempts=self.config.max_attempts)
                for youtube_id in ids]

    async def claim(self, limit: int) -> list[Job]:
        if limit < 1:
            return []
        claimed = await jobs.claim(self.db, self.worker, kinds=[KIND], limit=limit)
        for job in claimed:
            await self._notify(job)
        return claimed

    async def reap(self) -> list[Job]:
        """Requeue (or fail, out of attempts) jobs whose worker went silent."""
        reaped = await jobs.reap_stale(self.db, stale_after_s=self.config.stale_after_s)
        for job in reaped:
            await self._notify(job)
        return reaped

    async def statuses(self, job_ids: Iterable[int]) -> dict[int, str]:
        return await jobs.job_statuses(self.db, list(job_ids))

    async def status_counts(self, job_ids: Iterable[int]) -> dict[str, int]:
        """Jobs per status among ``job_ids`` (a few rows per chunk, however many jobs)."""
        return await jobs.count_by_status(self.db, list(job_ids))

    # --- one job -------------------------------------------------------------------------------

    @traced_job
    async def process(self, job: Job) -> Job:
        """Run a claimed job to ``completed``, ``failed`` or back to ``pending``; returns it."""
        lease = _Lease(job)
        try:
            async with task_scope() as scope:
                beat = scope.create_task(self._heartbeat(job.id), name=f"heartbeat job {job.id}")
                try:
                    return await self._run(lease, scope)
                finally:
                    beat.cancel()
        except LeaseLostError:  # cancelled or reaped: no longer ours
            return await ride_out(lambda: jobs.get_job(self.db, job.id))
        except asyncio.CancelledError:
            await self._hand_back(lease.job)
            raise
        except Exception as error:  # noqa: BLE001 - every failure ends in a recorded state
            return await ride_out(partial(self._fail, lease.job, error))

    async def _run(self, lease: _Lease, scope: asyncio.TaskGroup) -> Job:
        job = lease.job
        if job.video_id is None:
            raise WorkflowError(f"job {job.id} names no video to process")
        video = await videos.get_video(self.db, job.video_id)
        run = VideoRun(self.db, self.services, self.config, video,
                       VideoFiles.of(self.config.work_dir, video.youtube_id), job_id=job.id,
                       worker=self.worker)
        clean_partials(run.files.folder)
        stages = plan(self.config)
        if job.stage != stages[0].name:
            await self._beat(job.id, stage=stages[0].name, progress=0.0)
            lease.job = job = _on_stage(job, stages[0].name, 0.0)
            await self._notify(job)
        early: dict[str, asyncio.Task[Exception | None]] = {}
        for index, stage in enumerate(stages):
            if self.config.mode.parallel and stage.cpu_bound:
                for later in stages[index + 1:]:
                    if later.early is not None and later.name not in early:
                        early[later.name] = scope.create_task(
                            _early(later.name, later.early, run), name=f"early {later.name}")
            with self._measure(stage, job, video.youtube_id), stage_scope(stage.name):
                if stage.name in early and (error := await early[stage.name]) is not None:
                    raise error
                write = await stage.run(run)
                following = stages[index + 1] if index + 1 < len(stages) else None
                async with run.unit() as ex:
                    if write is not None:
                        await write(ex)
                    progress = (index + 1) / len(stages)
                    lease.job = job = await self._move(ex, run, job, following, progress)
            await self._notify(job)
        return job

    async def _move(self, ex: Executor, run: VideoRun, job: Job, following: Stage | None,
                    progress: float) -> Job:
        """The job's next step: its next status, or just its next stage within this status."""
        if following is None:
            await run.set_video(ex, status="completed")
            return await jobs.advance(ex, job.id, "completed", worker=self.worker)
        if following.status != job.status:
            return await jobs.advance(ex, job.id, following.status, worker=self.worker,
                                      stage=following.name, progress=progress)
        await jobs.heartbeat(ex, job.id, self.worker, stage=following.name, progress=progress)
        return _on_stage(job, following.name, progress)

    def _measure(self, stage: Stage, job: Job, youtube_id: str) -> AbstractContextManager[Any]:
        if self.recorder is None:
            return nullcontext()
        return self.recorder.measure("stage", stage.name, video=youtube_id, job=job.id,
                                     attempt=job.attempts, worker=self.worker)

    async def _heartbeat(self, job_id: int) -> None:
        """Renew the lease until cancelled; ``LeaseLostError`` stops the job's work. A beat lost to
        a database outage is skipped: the lease only lapses after ``stale_after_s`` of silence."""
        await every(self.config.heartbeat_s, lambda: self._beat(job_id), skip=OperationalError,
                    skipped=f"job {job_id}: heartbeat skipped, database unavailable",
                    pause_first=True)

    async def _beat(self, job_id: int, *, stage: str | None = None,
                    progress: float | None = None) -> None:
        # One statement, no transaction needed: on SQLite it still queues for the write lock
        # with the other tasks' transactions instead of polling in SQLite's busy handler.
        await jobs.heartbeat(self.db, job_id, self.worker, stage=stage, progress=progress)

    async def _fail(self, job: Job, error: Exception) -> Job:
        failure = classify(error, job.stage)
        if failure.defer_s is None:  # a deferral (an open breaker, nothing sent) is no failure
            await track_failure(self.db, job.id, job.stage, error, code=failure.code,
                                message=failure.message)
        return await self._record(job, failure, backoff_s=self.config.retry_backoff_s)

    async def _hand_back(self, job: Job) -> None:
        """Back to ``pending`` at once (attempts left), so the next run resumes it."""
        stopped = Failure("interrupted", f"{job.stage or 'start'}: the worker was stopped",
                          retryable=True)
        try:
            await self._record(job, stopped, backoff_s=0.0)
        except (DatabaseError, OSError) as exc:  # the reaper will requeue it instead
            logger.warning("job %s left for the reaper: %r", job.id, exc)

    async def _record(self, job: Job, failure: Failure, *, backoff_s: float) -> Job:
        """The failure in the job (retry after ``backoff_s``, deferred without spending the
        attempt, or ``failed`` with its video)."""
        try:
            async with self.db.transaction() as tx:
                if failure.defer_s is not None:  # nothing was tried: the attempt is not spent
                    failed = await jobs.defer(tx, job.id, worker=self.worker,
                                              delay_s=max(failure.defer_s, self.config.poll_s),
                                              code=failure.code, message=failure.message)
                else:
                    failed = await jobs.fail(tx, job.id, code=failure.code,
                                             message=failure.message, worker=self.worker,
                                             retryable=failure.retryable, backoff_s=backoff_s)
                if failed.status == "failed" and failed.video_id is not None:
                    await videos.update_video(tx, failed.video_id, status="failed")
        except InvalidTransitionError:  # LeaseLostError included: cancelled or reaped meanwhile
            return await jobs.get_job(self.db, job.id)
        logger.info("job %s %s (%s): %s", job.id, failed.status, failure.code, failure.message)
        await self._notify(failed)
        return failed

    async def _notify(self, job: Job) -> None:
        if self.on_change is None:
            return
        try:
            await self.on_change(job_update(job))
        except Exception:  # a broken status feed must not fail the work it reports on
            logger.exception("on_change hook failed for job %s", job.id)
