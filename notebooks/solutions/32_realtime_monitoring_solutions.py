"""Solutions to the exercises of notebooks/32_realtime_monitoring.ipynb.

Run: .venv/bin/python notebooks/solutions/32_realtime_monitoring_solutions.py
Like the notebook, it uses ``OPUSCLIP_DATABASE_URL`` (default: the SQLite file in work/), starts
from an empty schema, takes Redis pub/sub when ``OPUSCLIP_REDIS_URL`` is set (LISTEN/NOTIFY on
PostgreSQL, polling otherwise), and runs the workflow against the in-process sandbox (offline
stand-ins for the four APIs). A script starts its own event loop with asyncio.run(); in a
notebook, paste the body of a function into a cell and ``await`` it instead.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from opusclip_lib import config
from opusclip_lib.db import Database, connect, jobs, reset
from opusclip_lib.metrics import Recorder, percentiles
from opusclip_lib.monitoring import LiveStatus, Subscription, Update, job_update, open_feed
from opusclip_lib.monitoring.feed import TransportChoice
from opusclip_lib.sandbox import build_app
from opusclip_lib.sandbox.endpoints import LATENCY_PROFILE_MS, sandbox_config, sandbox_endpoints
from opusclip_lib.workflow import Services, WorkflowConfig, open_services, run_batch

REDIS_URL = config.redis_url()
CHANNEL = f"opusclip_jobs_{secrets.token_hex(4)}"  # this run's own channel
LINGER_S = 0.2  # after a batch: the last poll, the last message


async def exercise_1_two_boards(db: Database, services: Services, workflow: WorkflowConfig,
                                videos: Sequence[str]) -> None:
    deliveries = Recorder()  # the feed's own: counts what it delivered
    received = [0, 0]
    boards = [LiveStatus(), LiveStatus()]

    async def follow(subscription: Subscription, index: int) -> None:
        async for update in subscription:
            boards[index].apply(update)
            received[index] += 1

    async with open_feed(db, REDIS_URL, channel=CHANNEL, recorder=deliveries) as feed:
        subscriptions = [feed.updates(), feed.updates()]  # registered now: nothing is missed
        async with asyncio.TaskGroup() as group:
            for index, subscription in enumerate(subscriptions):
                group.create_task(follow(subscription, index))
            await run_batch(db, services, videos, workflow, on_change=feed.publish)
            await asyncio.sleep(LINGER_S)
            for subscription in subscriptions:
                subscription.close()  # ends its `async for` once the pending updates are read
    delivered = len(deliveries.frame("feed"))
    same = boards[0].table()[["status", "stage"]].equals(boards[1].table()[["status", "stage"]])
    print(f"1. two boards via {feed.transport}: {delivered} updates delivered, received "
          f"{received[0]} and {received[1]}; boards identical: {same}; {boards[0].counts()}")
    # Fan-out happens in the feed: one message from the transport, one copy per subscription.


async def slow_watcher(subscription: Subscription, *, step_s: float, coalesce: bool,
                       board: LiveStatus) -> tuple[int, int, float]:
    """Apply updates with a slow step; returns the largest backlog, the slow steps taken and
    how stale the board got (the oldest change it was still showing as news, in seconds)."""
    largest, steps, stalest = 0, 0, 0.0
    async for update in subscription:
        largest = max(largest, subscription.pending())
        batch = [update]
        if coalesce:
            while subscription.pending():
                try:
                    batch.append(await anext(subscription))
                except StopAsyncIteration:  # the feed closed while draining
                    break
        latest = {item["job_id"]: item for item in batch}  # the newest state of each job
        board.apply_all(latest.values())
        stalest = max(stalest, time.time() - update["published_at"])
        steps += 1
        await asyncio.sleep(step_s)  # the slow link, once per drained batch
    return largest, steps, stalest


async def exercise_2_slow_watcher(db: Database, services: Services, workflow: WorkflowConfig,
                                  videos: Sequence[str]) -> None:
    half = len(videos) // 2
    for coalesce, part in ((False, videos[:half]), (True, videos[half:])):
        board = LiveStatus()
        async with open_feed(db, REDIS_URL, channel=CHANNEL) as feed:
            subscription = feed.updates()
            async with asyncio.TaskGroup() as group:
                watcher = group.create_task(
                    slow_watcher(subscription, step_s=0.05, coalesce=coalesce, board=board))
                await run_batch(db, services, part, workflow, on_change=feed.publish)
                await asyncio.sleep(LINGER_S)
                subscription.close()
        largest, steps, stalest = watcher.result()
        print(f"2. {'coalescing' if coalesce else 'one by one'}: largest backlog {largest} "
              f"updates, {steps} slow steps, board up to {stalest * 1000:.0f} ms behind; "
              f"final {board.counts()}")
    # One by one, the backlog grows in every burst (a claim moves 4 jobs at once, stages end
    # for several videos together) and the board shows the past, more so the longer the burst.
    # Coalescing drops what no board needs, the older states of a job, so each slow step
    # brings the board fully up to date: fewer steps, and never more than one step behind.


async def exercise_3_alert_on_failure(db: Database, services: Services,
                                      workflow: WorkflowConfig, videos: Sequence[str]) -> None:
    doomed = videos[-1]
    broken = workflow.work_dir / "broken.mp4"  # its media cannot be decoded
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"not a video")
    stand_in = services.youtube_media
    assert stand_in is not None

    def media(youtube_id: str) -> Path:
        return broken if youtube_id == doomed else stand_in(youtube_id)

    failing = dataclasses.replace(services, youtube_media=media)
    alerts: list[Update] = []

    async def alert_on_failure(subscription: Subscription) -> None:
        async for update in subscription:
            if update["status"] == "failed":
                alerts.append(update)
                reason = update.get("error_code") or update.get("message")  # push / polling
                print(f"3. ALERT job {update['job_id']} failed ({reason}), "
                      f"{update['latency_s'] * 1000:.1f} ms after the change")

    async with open_feed(db, REDIS_URL, channel=CHANNEL) as feed:
        subscription = feed.updates()
        async with asyncio.TaskGroup() as group:
            group.create_task(alert_on_failure(subscription))
            report = await run_batch(db, failing, videos, workflow, on_change=feed.publish)
            await asyncio.sleep(LINGER_S)
            subscription.close()
    print(f"   batch: {report.statuses}; alerts raised: {len(alerts)}")


async def probe(db: Database, transport: TransportChoice, poll_interval_s: float, *,
                changes: int = 40, gap_s: float = 0.02) -> tuple[float, float]:
    """p95 latency (ms) and polls per second of one feed hearing ``changes`` job changes."""
    def polls() -> int:
        return sum(event.name == "feed poll" for event in db.recorder.events("query"))

    recorder, before, started = Recorder(), polls(), time.perf_counter()
    async with open_feed(db, REDIS_URL, transport=transport, poll_interval_s=poll_interval_s,
                         channel=CHANNEL, recorder=recorder) as feed:
        for _ in range(changes):
            job = await jobs.enqueue(db, "probe")
            await feed.publish(job_update(job))
            await asyncio.sleep(gap_s)
        await asyncio.sleep(poll_interval_s + 0.05)
    table = percentiles(recorder.frame("feed"), "name", quantiles=(0.95,))
    return float(table["p95_ms"].iloc[0]), (polls() - before) / (time.perf_counter() - started)


async def exercise_4_polling_budget(db: Database) -> None:
    watchers = 50
    print("4. interval  polls/s (50 boards)  expected p50  expected p95")
    for interval in (0.02, 0.1, 0.5):
        print(f"   {interval * 1000:5.0f} ms  {watchers / interval:12.0f}        "
              f"{interval / 2 * 1000:5.0f} ms      {interval * 0.95 * 1000:5.0f} ms")
    # A change waits uniformly between 0 and one interval for the next poll, so p50 is about
    # half the interval and p95 about 95% of it, plus the query and the commit. For p95 under
    # 100 ms, poll at most every ~80 ms (some room for the query): 50 boards then cost
    # 50 / 0.08 = 625 queries a second, every second, whether anything happens or not.
    p95_ms, per_s = await probe(db, "polling", 0.08)
    print(f"   measured at 80 ms: p95 {p95_ms:.1f} ms, {per_s:.1f} polls/s for one board "
          f"(x{watchers} = {per_s * watchers:.0f}/s)")


async def main() -> None:
    started = time.perf_counter()
    catalogue_app = build_app(sandbox_config(LATENCY_PROFILE_MS, scale=0.25))
    ids = [video.id for video in catalogue_app.state.sandbox.youtube.catalogue.videos]
    with tempfile.TemporaryDirectory() as folder:
        workflow = WorkflowConfig(work_dir=Path(folder), render=False)
        async with connect(config.database_url()) as db, \
                open_services(sandbox_endpoints(catalogue_app)) as services:
            await reset(db)
            print(f"backend: {db.name}; Redis: {REDIS_URL or 'not configured'}")
            # Each exercise takes videos of its own: a video already completed keeps its job.
            await exercise_1_two_boards(db, services, workflow, ids[0:6])
            await exercise_2_slow_watcher(db, services, workflow, ids[6:18])
            await exercise_3_alert_on_failure(db, services, workflow, ids[18:22])
            await exercise_4_polling_budget(db)
    print(f"solutions ran in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
