"""Dispatch overhead per job for each broker, against the embedded default (polling the database).

    opusclip bench dispatch --database postgresql://... --brokers none,redis://...,amqp://...,nats://...

Every job is empty: the engine claims it through the real lease and walks it to ``completed``,
so what is measured is only getting a job from ``enqueue`` to a worker's claim:

* latency: one job at a time, from the start of its enqueue (job + outbox row, relay publish)
  to its claim, median and p95 over ``--jobs`` jobs;
* throughput: ``--jobs`` jobs enqueued in one transaction and relayed, until all are finished.

``none`` is the embedded default: no broker, the worker sweeps the database every
``--poll`` seconds (the workflow's ``poll_s``). Later, ``bench scale`` calls :func:`measure`.
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import statistics
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from opusclip_lib.bench._output import save_json
from opusclip_lib.db import Database, Job, connect, jobs, outbox
from opusclip_lib.db.jobs import STAGES
from opusclip_lib.distributed.brokers import (
    BrokerSettings,
    deliveries,
    drop_names,
    open_broker,
    redact,
    shutdown_quietly,
)
from opusclip_lib.distributed.dispatch import Dispatcher
from opusclip_lib.distributed.relay import relay_once
from opusclip_lib.pipelines import task_scope
from opusclip_lib.workflow.config import WorkflowConfig

KIND = "bench.dispatch"
POLL_S = WorkflowConfig().poll_s


class LeaseOnlyEngine:
    """Claims ``kind`` jobs through the lease and walks each straight to ``completed``: a
    worker with no work in its jobs, counting its runs per job and when it claimed each."""

    def __init__(self, db: Database, *, kind: str = KIND, worker: str = "bench") -> None:
        self.db = db
        self.kind = kind
        self.worker = worker
        self.runs: dict[int, int] = {}
        self.claimed_at: dict[int, float] = {}
        self.finished = 0
        self._changed = asyncio.Condition()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds, checked after each claim and each finished job."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def claim(self, limit: int) -> list[Job]:
        claimed = await jobs.claim(self.db, self.worker, kinds=[self.kind], limit=limit)
        now = time.perf_counter()
        for job in claimed:
            self.claimed_at.setdefault(job.id, now)
        await self._notify()
        return claimed

    async def process(self, job: Job) -> Job:
        self.runs[job.id] = self.runs.get(job.id, 0) + 1
        for status in (*STAGES[1:], "completed"):
            job = await jobs.advance(self.db, job.id, status, worker=self.worker)
        self.finished += 1
        await self._notify()
        return job

    async def reap(self) -> list[Job]:
        return []

    async def statuses(self, job_ids: Iterable[int]) -> dict[int, str]:
        return await jobs.job_statuses(self.db, list(job_ids))


@dataclass(frozen=True, slots=True)
class DispatchResult:
    broker: str
    jobs: int
    latency_median_ms: float
    latency_p95_ms: float
    jobs_per_s: float


async def measure(db: Database, broker_url: str | None, *, jobs_n: int = 50,
                  poll_s: float = POLL_S, concurrency: int = 8) -> DispatchResult:
    """One broker's (``None``: the embedded default's) latency and throughput, on ``db``."""
    settings = (BrokerSettings(broker_url, prefix=f"opusclip_bench_{uuid.uuid4().hex[:8]}")
                if broker_url else None)
    await db.execute("DELETE FROM processing_jobs WHERE kind = ?", (KIND,))
    engine = LeaseOnlyEngine(db)
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        broker = None
        if settings is not None:
            stack.push_async_callback(drop_names, settings)
            broker = await stack.enter_async_context(open_broker(settings, consumer=True))

        async def enqueue(count: int) -> list[int]:
            async with db.transaction() as tx:
                if settings is None:
                    ids = [(await jobs.enqueue(tx, KIND)).id for _ in range(count)]
                else:
                    ids = [(await outbox.enqueue(tx, KIND)).id for _ in range(count)]
            if broker is not None and settings is not None:
                await relay_once(db, broker, settings)
            return ids

        dispatcher = Dispatcher(engine, concurrency=concurrency,
                                sweep_s=poll_s if broker is None else 3600, reap_s=3600,
                                drain_s=5)
        async with task_scope() as group:
            running = group.create_task(dispatcher.run(
                deliveries(broker) if broker is not None else None, stop,
                close=partial(shutdown_quietly, broker) if broker is not None else None))
            latencies = []
            for _ in range(jobs_n):
                started = time.perf_counter()
                [job_id] = await enqueue(1)
                await engine.wait_for(partial(operator.contains, engine.claimed_at, job_id))
                latencies.append(engine.claimed_at[job_id] - started)
            started = time.perf_counter()
            await enqueue(jobs_n)
            await engine.wait_for(lambda: engine.finished >= 2 * jobs_n)
            seconds = time.perf_counter() - started
            stop.set()
            await running
    ms = sorted(1000 * latency for latency in latencies)
    return DispatchResult(redact(broker_url) if broker_url else "none (polling)", jobs_n,
                          round(statistics.median(ms), 2), round(ms[int(0.95 * (len(ms) - 1))], 2),
                          round(jobs_n / seconds, 1))


async def run(args: argparse.Namespace) -> list[DispatchResult]:
    async with connect(args.database) as db:
        return [await measure(db, None if url == "none" else url, jobs_n=args.jobs,
                              poll_s=args.poll, concurrency=args.concurrency)
                for url in args.brokers]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opusclip bench dispatch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True)
    parser.add_argument("--brokers", required=True,
                        type=lambda text: [b.strip() for b in text.split(",") if b.strip()],
                        help="comma-separated broker URLs; none: the embedded default")
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--poll", type=float, default=POLL_S,
                        help="the embedded default's polling interval")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    print(f"{'broker':<36} {'median ms':>10} {'p95 ms':>8} {'jobs/s':>8}")
    for result in results:
        print(f"{result.broker:<36} {result.latency_median_ms:>10.2f} "
              f"{result.latency_p95_ms:>8.2f} {result.jobs_per_s:>8.1f}")
    if args.json:
        save_json(args, args.json, results=[asdict(result) for result in results])
    return 0
