"""Solutions to the exercises of notebooks/35_distributed_processing.ipynb.

Run: .venv/bin/python notebooks/solutions/35_distributed_processing_solutions.py
Like the notebook, it uses ``OPUSCLIP_DATABASE_URL`` (default: a SQLite file in its work folder,
which the worker processes share), starts from an empty schema and writes its files under
work/35_distributed_processing_solutions/. The workers run without a broker: they poll.
A script starts its own event loop with asyncio.run(); in a notebook, paste the body of a function
into a cell and ``await`` it instead.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from opusclip_lib import config
from opusclip_lib.db import Database, connect, jobs, reset
from opusclip_lib.distributed.brokers import BrokerSettings
from opusclip_lib.distributed.command import enqueue, status

WORK = config.work_dir() / "35_distributed_processing_solutions"
DATABASE_URL = os.environ.get("OPUSCLIP_DATABASE_URL") or f"sqlite:///{WORK / 'jobs.db'}"
CATALOGUE = [video["id"] for video in
             json.loads((config.data_dir() / "catalogue.json").read_text())["videos"]]
LATENCY_MS = {"youtube.videos.list": 10, "openai.chat.completions": 80,
              "openai.audio.transcriptions": 150, "stability.generate": 200,
              "elevenlabs.text_to_speech": 100}
WAIT_S = 120.0


def start_worker(name: str, *options: str) -> subprocess.Popen[bytes]:
    """One ``opusclip worker`` process, polling the database (no broker), as in the notebook;
    ``options`` come last, so a ``--latency`` there overrides the default one."""
    latency = [f"--latency={endpoint}={ms}" for endpoint, ms in LATENCY_MS.items()]
    env = {key: value for key, value in os.environ.items() if key != "OPUSCLIP_BROKER_URL"}
    with open(WORK / f"{name}.out", "w") as out, open(WORK / f"{name}.log", "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "opusclip_lib", "worker", "--database", DATABASE_URL,
             "--work-dir", str(WORK / "shared"), "--no-render", "--clips", "1",
             "--concurrency", "1", "--heartbeat", "0.2", "--stale-after", "2", *latency,
             *options], stdout=out, stderr=err, env=env)


async def wait_until(condition: Callable[[], Awaitable[Any]],
                     worker: subprocess.Popen[bytes] | None = None) -> Any:
    """Until ``await condition()`` is truthy; a worker that exits meanwhile is an error."""
    async with asyncio.timeout(WAIT_S):
        while not (value := await condition()):
            if worker is not None and worker.poll() is not None:
                raise RuntimeError(f"worker exited {worker.returncode} while we waited")
            await asyncio.sleep(0.05)
    return value


def stop(worker: subprocess.Popen[bytes]) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=WAIT_S)


# 1. Scale on queue depth -------------------------------------------------------------------------

def workers_wanted(summary: dict[str, Any], videos_per_worker_per_min: float,
                   drain_within_s: float, max_workers: int) -> int:
    """Workers to run so that the pending and running jobs are done within ``drain_within_s``:
    none for an empty queue, at least one while there is work, at most ``max_workers``."""
    backlog = int(summary["pending"]) + int(summary["running"])
    if backlog == 0:
        return 0
    per_worker = videos_per_worker_per_min * drain_within_s / 60
    return max(1, min(max_workers, math.ceil(backlog / per_worker)))


async def exercise_1_scale_on_queue_depth(db: Database) -> int:
    await reset(db)
    assert workers_wanted(await status(db, alive_within_s=1.0), 100, 3.0, 8) == 0
    await enqueue(db, CATALOGUE[1:13], None)   # no worker runs: the twelve jobs wait
    summary = await status(db, alive_within_s=1.0)
    assert summary["pending"] == 12
    assert summary["workers_alive"] == 0
    # 100 videos a minute per worker finish 5 videos in 3 s: 12 need ceil(12 / 5) = 3 workers
    wanted = workers_wanted(summary, videos_per_worker_per_min=100, drain_within_s=3.0,
                            max_workers=8)
    assert wanted == 3
    assert workers_wanted(summary, 100, 3.0, max_workers=2) == 2        # the cap wins
    assert workers_wanted(summary, 1000, 60.0, max_workers=8) == 1      # at least one
    print(f"1. {summary['pending']} pending, oldest {summary['oldest_pending_age_s']:.1f} s old: "
          f"run {wanted} workers")
    return wanted


# 2. A drain that runs out ------------------------------------------------------------------------

async def exercise_2_a_drain_that_runs_out(db: Database) -> list[str]:
    await reset(db)
    [job_id] = (await enqueue(db, ["opusSample1"], None))["jobs"]
    slow = start_worker("slow", "--latency=elevenlabs.text_to_speech=5000",
                        "--drain-deadline", "0.5")
    try:
        # the voice-over is the last stage of `rendering` with rendering off: the 5 s wait
        await wait_until(lambda: _is(db, job_id, "rendering"), slow)
    finally:
        code = stop(slow)
    assert code == 0, f"SIGTERM is a clean stop, exit 0, not {code}"
    events = [e.message or "" for e in await jobs.job_events(db, job_id)]
    assert (await jobs.get_job(db, job_id)).status == "pending"
    assert any(message.startswith("interrupted") for message in events), events
    fresh = start_worker("fresh")
    try:
        await wait_until(lambda: _is(db, job_id, "completed"), fresh)
    finally:
        assert stop(fresh) == 0
    history = [f"{e.from_status or ''} -> {e.to_status}" for e in await jobs.job_events(db, job_id)]
    handed_back = next(m for m in events if m.startswith("interrupted"))
    print(f"2. handed back after the 0.5 s deadline ({handed_back}), then finished by a "
          f"fresh worker: {', '.join(history)}")
    return history


async def _is(db: Database, job_id: int, wanted: str) -> bool:
    return (await jobs.get_job(db, job_id)).status == wanted


# 3. A broker that is down ------------------------------------------------------------------------

async def exercise_3_a_broker_that_is_down(db: Database) -> dict[str, Any]:
    await reset(db)
    report = await enqueue(db, ["opusSample1"], BrokerSettings("redis://127.0.0.1:1/0"))
    [job_id] = report["jobs"]
    # the error names the broker and its URL; the job and its wake-up are stored
    assert "redis" in report["broker_error"]
    assert "127.0.0.1:1" in report["broker_error"]
    assert report["outbox_unsent"] == 1
    assert await _is(db, job_id, "pending")
    worker = start_worker("polling")   # no broker: its sweep finds the job in the database
    try:
        await wait_until(lambda: _is(db, job_id, "completed"), worker)
    finally:
        assert stop(worker) == 0
    print(f"3. {report['broker_error']}; {report['outbox_unsent']} wake-up waited in the outbox, "
          "and a polling worker finished the job anyway")
    return report


async def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    async with connect(DATABASE_URL) as db:
        await exercise_1_scale_on_queue_depth(db)
        await exercise_2_a_drain_that_runs_out(db)
        await exercise_3_a_broker_that_is_down(db)


if __name__ == "__main__":
    asyncio.run(main())
