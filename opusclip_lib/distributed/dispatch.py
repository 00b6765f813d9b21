"""One worker process's loop: claim when woken, sweep the database, drain on stop.

A delivery is only a doorbell. On each one the dispatcher waits for a free slot, claims through
the job lease (whatever job is due first, not necessarily the one named), and then acks. It
acks *on claim*, not when the job finishes: a stage may run far longer than any broker's ack
deadline (Redis's idle timeout, JetStream's ack wait, RabbitMQ's consumer timeout), and the
delivery carries nothing worth keeping once the claim is committed, since the lease and the
reaper own recovery. So a late or duplicate delivery meets a job that is already claimed or
finished, claims nothing new, and repeats no effect; a worker killed before its ack makes the
broker redeliver, which is equally harmless.

The database stays the truth: a slow sweep claims what no message announced (jobs retried
after a backoff, reaped from a dead worker, or enqueued while the broker was down), and runs
the reaper and the outbox relay. Without a broker the sweep is the whole loop, at the
workflow's polling interval, as the single-database worker does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from taskiq import AckableMessage

from opusclip_lib.db import Job, every
from opusclip_lib.distributed.brokers import Wakeup
from opusclip_lib.pipelines import task_scope
from opusclip_lib.workflow.outage import ride_out

logger = logging.getLogger(__name__)

STOP_GRACE_S = 1.0
"""How long a cancelled read of deliveries may take to end before its connection is closed."""


class Claimer(Protocol):
    """What the dispatcher needs of :class:`~opusclip_lib.workflow.engine.Engine`."""

    async def claim(self, limit: int) -> list[Job]: ...

    def process(self, job: Job) -> Awaitable[Job]: ...

    async def reap(self) -> list[Job]: ...

    async def statuses(self, job_ids: Iterable[int]) -> dict[int, str]: ...


@dataclass(slots=True)
class DispatchStats:
    """Deliveries against effects: what the redelivery tests and the benchmark count."""

    deliveries: int = 0
    unknown: int = 0
    malformed: int = 0
    claimed: int = 0
    claimed_on_wake: int = 0
    sweeps: int = 0
    processed: int = 0
    finished: list[int] = field(default_factory=list)


class Dispatcher:
    """Runs up to ``concurrency`` jobs of ``engine`` at a time.

    ``sweep_s``: seconds between database sweeps (claim, reap every ``reap_s``, and the
    ``periodic`` hook, e.g. the outbox relay). ``drain_s``: on stop, how long running jobs may
    take to finish before they are cancelled, which hands each back to ``pending``.
    """

    def __init__(self, engine: Claimer, *, concurrency: int, sweep_s: float, reap_s: float,
                 drain_s: float,
                 periodic: Callable[[], Awaitable[None]] | None = None) -> None:
        self.engine = engine
        self.concurrency = concurrency
        self.sweep_s = sweep_s
        self.reap_s = reap_s
        self.drain_s = drain_s
        self.periodic = periodic
        self.stats = DispatchStats()
        self._running: set[asyncio.Task[Job]] = set()
        self._freed = asyncio.Event()
        self._claiming = asyncio.Lock()

    async def run(self, deliveries: AsyncIterator[AckableMessage | bytes] | None,
                  stop: asyncio.Event, *,
                  close: Callable[[], Awaitable[None]] | None = None) -> DispatchStats:
        """Work until ``stop`` is set, then drain.

        ``close`` (e.g. the broker's shutdown) ends ``deliveries`` on stop: some brokers'
        consumers (JetStream's pull fetch, aio-pika's queue iterator) swallow the cancellation
        of a waiting read, so only closing the connection under them ends it.
        """
        async with task_scope() as jobs_group:
            async with task_scope() as loops:
                sweeper = loops.create_task(self._sweep(jobs_group), name="dispatch sweep")
                listener = (loops.create_task(self._listen(deliveries, jobs_group, stop),
                                              name="dispatch listen")
                            if deliveries is not None else None)
                await stop.wait()
                sweeper.cancel()
                if listener is not None:
                    listener.cancel()
                    _, pending = await asyncio.wait({listener}, timeout=STOP_GRACE_S)
                    if pending and close is not None:
                        await close()
            await self._drain()
        return self.stats

    async def _drain(self) -> None:
        if not self._running:
            return
        _, late = await asyncio.wait(set(self._running), timeout=self.drain_s)
        for task in late:  # Engine.process hands a cancelled job back to pending
            task.cancel()
        if late:
            logger.info("drain: %d job(s) handed back after %g s", len(late), self.drain_s)

    async def _listen(self, deliveries: AsyncIterator[AckableMessage | bytes],
                      group: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        """Claim for each delivery. A broker that fails leaves the sweep to find the jobs:
        the worker carries on at the sweep's pace instead of stopping."""
        try:
            async for delivery in deliveries:
                await self.on_delivery(delivery, group)
        except Exception:
            if not stop.is_set():
                logger.warning("broker deliveries failed; sweeping the database every %g s",
                               self.sweep_s, exc_info=True)

    async def on_delivery(self, delivery: AckableMessage | bytes,
                          group: asyncio.TaskGroup) -> None:
        """Claim for one delivery, then ack it (see the module's docstring for why then)."""
        self.stats.deliveries += 1
        data = delivery.data if isinstance(delivery, AckableMessage) else delivery
        wakeup = Wakeup.decode(data)
        if wakeup is None:
            self.stats.malformed += 1
            logger.warning("broker message is no wake-up, dropped: %r", data[:200])
        elif wakeup.job_id not in await ride_out(lambda: self.engine.statuses([wakeup.job_id])):
            self.stats.unknown += 1
            logger.warning("wake-up for unknown job %d, dropped", wakeup.job_id)
        else:
            while len(self._running) >= self.concurrency:
                self._freed.clear()
                await self._freed.wait()
            self.stats.claimed_on_wake += await self._claim(group)
        if isinstance(delivery, AckableMessage):
            acked = delivery.ack()
            if acked is not None:
                await acked

    async def _sweep(self, group: asyncio.TaskGroup) -> None:
        loop = asyncio.get_running_loop()
        next_reap = loop.time()

        async def sweep() -> None:
            nonlocal next_reap
            if loop.time() >= next_reap:
                await ride_out(self.engine.reap)
                next_reap = loop.time() + self.reap_s
            if self.periodic is not None:
                await self.periodic()
            await self._claim(group)
            self.stats.sweeps += 1

        await every(self.sweep_s, sweep)

    async def _claim(self, group: asyncio.TaskGroup) -> int:
        """Claim for the free slots and start the jobs; how many were claimed."""
        async with self._claiming:
            free = self.concurrency - len(self._running)
            if free < 1:
                return 0
            claimed = await ride_out(lambda: self.engine.claim(free))
            self.stats.claimed += len(claimed)
            for job in claimed:
                task = group.create_task(self._process(job), name=f"job {job.id}")
                self._running.add(task)
                task.add_done_callback(self._done)
            return len(claimed)

    async def _process(self, job: Job) -> Job:
        return await self.engine.process(job)

    def _done(self, task: asyncio.Task[Job]) -> None:
        self._running.discard(task)
        self._freed.set()
        if not task.cancelled() and task.exception() is None:
            self.stats.processed += 1
            self.stats.finished.append(task.result().id)
