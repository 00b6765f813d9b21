"""Solutions to the exercises of notebooks/14_db_video_workflow.ipynb.

Run: .venv/bin/python notebooks/solutions/14_db_video_workflow_solutions.py
Like the notebook, it uses ``OPUSCLIP_DATABASE_URL`` (default: the SQLite file in work/) and
starts from an empty schema. A script starts its own event loop with asyncio.run(); in a
notebook, paste the body of a function into a cell and ``await`` it instead.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from itertools import pairwise
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from opusclip_lib import config
from opusclip_lib.charts import timeline
from opusclip_lib.db import (
    Database,
    InvalidTransitionError,
    Job,
    Video,
    connect,
    jobs,
    reset,
    videos,
)

WORK_SECONDS = {"downloading": 0.03, "transcribing": 0.06, "analyzing": 0.02, "rendering": 0.04}
PIPELINE = [*jobs.STAGES, "completed"]


async def run_job(db: Database, job: Job, worker: str) -> None:
    for current, following in pairwise(PIPELINE):
        await asyncio.sleep(WORK_SECONDS[current])
        await jobs.advance(db, job.id, following, worker=worker, stage=following)


async def claims_per_job(db: Database, kind: str) -> Counter[int]:
    rows = await db.fetch("SELECT e.job_id FROM job_events e JOIN processing_jobs j ON j.id = "
                          "e.job_id WHERE j.kind = ? AND e.to_status = 'downloading'", (kind,))
    return Counter(row["job_id"] for row in rows)


async def unfinished(db: Database, kind: str) -> bool:
    return bool({job.status for job in await jobs.list_jobs(db, kind=kind)} - jobs.FINISHED)


async def exercise_1_batch_claims(db: Database, talks: list[Video]) -> Path:
    kind = "batch-claims"
    for talk in talks[:24]:
        await jobs.enqueue(db, kind, video_id=talk.id)
    loop = asyncio.get_running_loop()
    origin = loop.time()
    spans: list[dict] = []  # one row per job and phase, one lane per job

    async def worker(name: str) -> None:
        while claimed := await jobs.claim(db, name, kinds=[kind], limit=3):
            claimed_at = loop.time() - origin
            for job in claimed:  # the 2nd and 3rd job wait, already "downloading"
                started_at = loop.time() - origin
                await run_job(db, job, name)
                finished_at = loop.time() - origin
                lane = f"{name}, job {job.id:02d}"
                spans.append({"job": lane, "phase": "held, not started",
                              "start": claimed_at, "seconds": started_at - claimed_at})
                spans.append({"job": lane, "phase": "running",
                              "start": started_at, "seconds": finished_at - started_at})

    async with asyncio.TaskGroup() as group:
        for n in range(1, 5):
            group.create_task(worker(f"worker-{n}"))
    claims = await claims_per_job(db, kind)
    assert len(claims) == 24, "every job was claimed"
    assert set(claims.values()) == {1}, "no job was claimed twice"
    frame = pd.DataFrame(spans).sort_values(["job", "start"], kind="stable")
    held = frame[frame.phase == "held, not started"]
    job_s = sum(WORK_SECONDS.values())
    # The third job of a batch waits, claimed and "downloading", while the worker runs two others.
    assert held.seconds.max() >= 2 * job_s * 0.99, held.seconds.max()

    ax = timeline(frame, lane="job", color_by="phase",
                  title="claim(limit=3): each job from its claim to its start, then running")
    fig = ax.figure
    fig.tight_layout()
    chart = config.work_dir() / "14_batch_claims_timeline.png"
    fig.savefig(chart)
    plt.close(fig)
    assert chart.stat().st_size > 0
    print(f"24 jobs, {sum(claims.values())} claims, every job once: True; timeline: {chart}")
    print(f"longest a claimed job sat untouched: {held.seconds.max():.2f} s "
          f"(one job takes {job_s:.2f} s)")
    # The proof holds: a batch is still handed out once. But the jobs a worker holds and has not
    # started look like running jobs ("downloading", locked, heartbeat from the claim), and their
    # heartbeat ages while they wait. With a stale_after_s shorter than two jobs' work, the
    # reaper would requeue jobs nobody had started. Batch claims save round trips; heartbeat
    # every held job, or claim only as many as you can start now.
    return chart


async def exercise_2_enqueue_once(db: Database, talk: Video) -> None:
    key = f"clips:{talk.youtube_id}"
    first = await jobs.enqueue(db, "clips-once", video_id=talk.id, idempotency_key=key)
    again = await jobs.enqueue(db, "clips-once", video_id=talk.id, idempotency_key=key)
    stored = await jobs.list_jobs(db, kind="clips-once", video_id=talk.id)
    assert again.id == first.id, "the second enqueue returns the first job"
    assert len(stored) == 1, "one job for the video"
    print(f"second enqueue returned job {again.id} (the first was {first.id}); "
          f"jobs stored for the video: {len(stored)}")


async def exercise_3_cancel_a_running_job(db: Database, talk: Video) -> None:
    stage_s, heartbeat_s = 0.2, 0.05
    job = await jobs.enqueue(db, "cancel-demo", video_id=talk.id)
    loop = asyncio.get_running_loop()

    async def careful_worker(name: str) -> tuple[str, float]:
        [held] = await jobs.claim(db, name, kinds=["cancel-demo"])
        current = held.status
        try:
            for current, following in pairwise(PIPELINE):
                deadline = loop.time() + stage_s
                while loop.time() < deadline:  # work in slices, heartbeat after each
                    await asyncio.sleep(heartbeat_s)
                    await jobs.heartbeat(db, held.id, name)
                await jobs.advance(db, held.id, following, worker=name, stage=following)
        except InvalidTransitionError as error:  # LeaseLostError from heartbeat(), or a refusal
            return f"stopped while {current}: {type(error).__name__}", loop.time()
        return "finished (the cancel came too late)", loop.time()

    working = asyncio.create_task(careful_worker("worker-1"))
    await asyncio.sleep(0.1)
    await jobs.cancel(db, job.id, reason="the user cancelled")
    cancelled_at = loop.time()
    outcome, stopped_at = await working
    final = await jobs.get_job(db, job.id)
    assert outcome.startswith("stopped"), outcome
    assert "LeaseLostError" in outcome, outcome
    assert final.status == "cancelled"
    print(f"{outcome}, {stopped_at - cancelled_at:.3f} s after the cancel "
          f"(heartbeat every {heartbeat_s} s); job status: {final.status}")


async def exercise_4_periodic_reaper(db: Database, talks: list[Video]) -> None:
    kind = "reaper-demo"
    for talk in talks[:16]:
        await jobs.enqueue(db, kind, video_id=talk.id)
    stop = asyncio.Event()

    async def reaper() -> None:
        while not stop.is_set():
            for job in await jobs.reap_stale(db, stale_after_s=0.3):
                print(f"  reaper: job {job.id} back to {job.status} ({job.error_message})")
            try:
                async with asyncio.timeout(0.1):
                    await stop.wait()
            except TimeoutError:
                pass

    async def worker(name: str, *, crash_on: int | None = None) -> None:
        started = 0
        while await unfinished(db, kind):  # pending or running: a reaped job may come back
            claimed = await jobs.claim(db, name, kinds=[kind])
            if not claimed:
                await asyncio.sleep(0.02)
                continue
            started += 1
            if started == crash_on:
                return  # "crash": keep the job, never heartbeat again
            await run_job(db, claimed[0], name)

    async with asyncio.TaskGroup() as group:
        group.create_task(reaper())
        async with asyncio.TaskGroup() as workers:
            for n in range(1, 5):
                workers.create_task(worker(f"worker-{n}", crash_on=2 if n == 4 else None))
        stop.set()
    claims = await claims_per_job(db, kind)
    statuses = Counter(job.status for job in await jobs.list_jobs(db, kind=kind))
    assert statuses == {"completed": 16}, statuses
    assert sorted(claims.values()) == [1] * 15 + [2], "exactly one job was claimed twice"
    print(f"final statuses: {dict(statuses)}; jobs claimed twice: "
          f"{sum(count == 2 for count in claims.values())}")


async def exercise_5_failure_report(db: Database) -> None:
    rows = await db.fetch(
        "SELECT j.id, j.kind, j.status, j.error_code, count(*) AS claims "
        "FROM processing_jobs j JOIN job_events e ON e.job_id = j.id "
        "WHERE e.to_status = 'downloading' "
        "GROUP BY j.id, j.kind, j.status, j.error_code HAVING count(*) > 1 ORDER BY j.id")
    assert [row["kind"] for row in rows] == ["reaper-demo"], "the reaped job of exercise 4"
    for row in rows:
        print(f"job {row['id']} ({row['kind']}): {row['claims']} claims, now {row['status']}, "
              f"last error {row['error_code']}")


async def main() -> None:
    async with connect(config.database_url()) as db:
        await reset(db)
        print(f"--- backend: {db.name}")
        await videos.insert_videos(db, [{"youtube_id": f"nb14sol{n:04d}"} for n in range(1, 41)])
        talks = await videos.list_videos(db, limit=40)
        print("--- exercise_1_batch_claims")
        await exercise_1_batch_claims(db, talks)
        print("--- exercise_2_enqueue_once")
        await exercise_2_enqueue_once(db, talks[0])
        print("--- exercise_3_cancel_a_running_job")
        await exercise_3_cancel_a_running_job(db, talks[1])
        print("--- exercise_4_periodic_reaper")
        await exercise_4_periodic_reaper(db, talks[20:])
        print("--- exercise_5_failure_report")
        await exercise_5_failure_report(db)


if __name__ == "__main__":
    asyncio.run(main())
