"""Many videos at once: at most ``concurrency`` in flight, each stage bounded by what it spends.

The batch claims a job only when a slot is free, so memory holds ``concurrency`` videos however
long the list (the rest wait as rows in the job table). Inside, each stage is bounded by its
scarce resource: the providers' policies cap requests in flight per API
(:class:`~opusclip_lib.workflow.services.ApiLimits`), and ffmpeg runs at most one process per
core (:func:`opusclip_lib.media.default_limiter`).

Throughput bound (the *critical path*): a video's stages run one after another, so one video
takes at least ``L``, the sum of its stage latencies (clips of a stage run side by side, so a
stage counts once); with ``C`` videos in flight the batch can finish at most ``C / L`` videos a
second, and less when a stage's own bound binds first (``limit_k / latency_k`` for stage k).
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm  # text bars, not tqdm.auto's widgets: a saved notebook keeps text

from opusclip_lib.db import Database, Job, jobs, validate
from opusclip_lib.db.jobs import FINISHED
from opusclip_lib.metrics import Recorder
from opusclip_lib.pipelines import task_scope
from opusclip_lib.workflow.config import WorkflowConfig
from opusclip_lib.workflow.engine import Engine, JobUpdate, OnChange
from opusclip_lib.workflow.outage import ride_out
from opusclip_lib.workflow.services import Services
from opusclip_lib.workflow.stages import plan

ENQUEUE_CHUNK = 100
"""Videos enqueued per transaction: the rows and jobs held meanwhile stay few, whatever the
length of the list (the batch then keeps only job ids: eight bytes and a set slot each)."""


class DroppingRecorder(Recorder):
    """Times like a :class:`Recorder` but keeps nothing: for the database of a long-running
    worker, whose default recorder would otherwise hold every query it ever ran."""

    def add(self, kind: str, name: str, *, start: float | None = None, seconds: float = 0.0,
            ok: bool = True, error: str | None = None, **labels: Any) -> None:
        """Nothing to keep."""


@dataclass(frozen=True, slots=True)
class BatchReport:
    """How a batch went: its jobs per final status, and the wall time from enqueue to the last."""

    mode: str
    concurrency: int
    videos: int
    seconds: float
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return self.statuses.get("completed", 0)

    @property
    def videos_per_min(self) -> float:
        return 60 * self.completed / self.seconds if self.seconds else 0.0


def critical_path_bound(stage_s: Iterable[float], concurrency: int) -> float:
    """Ideal videos per second: ``C / L`` with ``L`` the sum of one video's stage latencies."""
    total = sum(stage_s)
    return concurrency / total if total > 0 else math.inf


class StageProgress:
    """Progress of a batch on stderr, driven by the jobs' status changes; an ``on_change`` hook
    (off: no bars).

    In a terminal, one tqdm bar per stage counts the videos past it, the bars stacked with
    cursor moves. Anywhere else (a notebook, a log file, CI) those moves would be saved as
    escape codes and frozen half-drawn bars, so one text bar counts finished videos and its
    postfix counts the videos past each stage: one line, redrawn with carriage returns, whose
    last state is what a saved notebook keeps."""

    def __init__(self, total: int, stages: Sequence[str], *, enabled: bool,
                 file: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stages = tuple(stages)
        stream = file or sys.stderr
        self.per_stage = enabled and stream.isatty()
        self.bars: list[tqdm[Any]] = []
        if self.per_stage:
            self.bars = [tqdm(total=total, desc=f"{name:<10}", position=index, unit="video",
                              leave=True, file=stream)
                         for index, name in enumerate(self.stages)]
        elif enabled:
            self.bars = [tqdm(total=total, desc="videos", unit="video", file=stream)]
        self.past = dict.fromkeys(self.stages, 0)
        self._passed: dict[int, int] = {}
        self.failed = 0

    def __enter__(self) -> StageProgress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for bar in self.bars:
            bar.close()

    async def __call__(self, update: JobUpdate) -> None:
        if not self.enabled:
            return
        job_id, status = update["job_id"], update["status"]
        if status == "completed":
            reached = len(self.stages)
        elif update["stage"] in self.stages:
            reached = self.stages.index(update["stage"])
        else:
            reached = 0
        passed = self._passed.get(job_id, 0)
        for stage in self.stages[passed:reached]:
            self.past[stage] += 1
        if self.per_stage:
            for bar in self.bars[passed:reached]:
                bar.update(1)
        if status in FINISHED:
            self._passed.pop(job_id, None)
            self.failed += status == "failed"
        elif reached > passed:
            self._passed[job_id] = reached
        if self.per_stage:
            if status in FINISHED:
                self.bars[-1].set_postfix(failed=self.failed)
            return
        [bar] = self.bars
        bar.set_postfix_str(", ".join([*(f"{stage} {count}" for stage, count in self.past.items()),
                                       f"failed {self.failed}"]), refresh=False)
        bar.update(int(status in FINISHED))


def _hooks(*hooks: OnChange | None) -> OnChange:
    chosen = [hook for hook in hooks if hook is not None]

    async def notify(update: JobUpdate) -> None:
        for hook in chosen:
            await hook(update)

    return notify


async def drain(engine: Engine, job_ids: Iterable[int], *, concurrency: int) -> None:
    """Claim and process jobs, ``concurrency`` at a time, until every one of ``job_ids`` is
    finished (completed, failed or cancelled), reaping stale jobs on the way.

    A job another worker holds, or one waiting out a retry backoff, is waited for; jobs outside
    ``job_ids`` that are due are processed too (this is a worker of the shared queue). A database
    outage is ridden out (:func:`~opusclip_lib.workflow.outage.ride_out`): the loop waits and
    carries on, and so does each job's failure report.
    """
    config = engine.config
    remaining = set(job_ids)
    running: set[asyncio.Task[Job]] = set()
    reap_every = max(config.stale_after_s / 2, config.poll_s)
    loop = asyncio.get_running_loop()
    next_reap = loop.time()
    async with task_scope() as group:
        while remaining:
            if loop.time() >= next_reap:
                await ride_out(engine.reap)
                next_reap = loop.time() + reap_every
            free = concurrency - len(running)
            for job in await ride_out(partial(engine.claim, free)):
                running.add(group.create_task(engine.process(job), name=f"job {job.id}"))
            if running:
                done, _ = await asyncio.wait(running, timeout=config.poll_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    running.discard(task)
                    finished = task.result()
                    if finished.status in FINISHED:
                        remaining.discard(finished.id)
                continue
            statuses = await ride_out(partial(engine.statuses, remaining))
            remaining = {job_id for job_id in remaining if statuses.get(job_id) not in FINISHED
                         and job_id in statuses}
            if remaining:
                await asyncio.sleep(config.poll_s)


async def run_batch(db: Database, services: Services, youtube_ids: Iterable[str],
                    config: WorkflowConfig | None = None, *, concurrency: int = 4,
                    worker: str | None = None, on_change: OnChange | None = None,
                    recorder: Recorder | None = None, progress: bool = False) -> BatchReport:
    """Enqueue ``youtube_ids`` and work the queue until each of their jobs is finished.

    The naive mode ignores ``concurrency`` (one video at a time). Safe to call again after a
    crash or a cancellation: finished videos stay finished, the rest resume where they were.
    """
    config = config or WorkflowConfig()
    concurrency = validate.count(concurrency, name="concurrency") if config.mode.parallel else 1
    ids = validate.youtube_ids(youtube_ids)
    started = time.perf_counter()
    stages = [stage.name for stage in plan(config)]
    with StageProgress(len(ids), stages, enabled=progress) as bars:
        engine = Engine(db, services, config, worker=worker, on_change=_hooks(bars, on_change),
                        recorder=recorder)
        job_ids: list[int] = []
        for start in range(0, len(ids), ENQUEUE_CHUNK):  # rows, not objects, for a long list
            job_ids += [job.id for job in await engine.enqueue(ids[start:start + ENQUEUE_CHUNK])]
        await drain(engine, job_ids, concurrency=concurrency)
    seconds = time.perf_counter() - started
    return BatchReport(config.mode.name, concurrency, len(ids), seconds,
                       await engine.status_counts(job_ids))


async def run_video(db: Database, services: Services, youtube_id: str,
                    config: WorkflowConfig | None = None, *, on_change: OnChange | None = None,
                    recorder: Recorder | None = None) -> Job:
    """One video, start to finish (or failure); returns its job."""
    config = config or WorkflowConfig()
    engine = Engine(db, services, config, on_change=on_change, recorder=recorder)
    [job] = await engine.enqueue([youtube_id])
    await drain(engine, [job.id], concurrency=1)
    return await jobs.get_job(db, job.id)
