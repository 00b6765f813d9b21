"""Each broker wakes workers, and a duplicate or redelivered message repeats no effect.

Real servers (Redis Streams, RabbitMQ, NATS JetStream); the queue, stream and consumer names of
each test start with ``h_broker_`` and a random suffix, and are deleted afterwards. The jobs are
real rows with real leases; the "work" is the dispatch benchmark's engine, which walks a claimed
job to ``completed`` and counts its runs, so deliveries can be counted against claims and runs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from taskiq import AckableMessage, AsyncBroker

from opusclip_lib.bench.dispatch import LeaseOnlyEngine
from opusclip_lib.db import Database, Job, connect, jobs, outbox
from opusclip_lib.distributed.brokers import (
    BrokerSettings,
    Wakeup,
    deliveries,
    drop_names,
    open_broker,
    publish,
)
from opusclip_lib.distributed.dispatch import Dispatcher
from opusclip_lib.distributed.relay import relay_once
from opusclip_lib.pipelines import task_scope
from tests.waiting import until

ACK_DEADLINE_S = 0.5
WAIT_S = 30.0
"""Bound on one wait for a delivery: a broker that never delivers fails the test, never hangs."""


@pytest.fixture
async def settings(broker_url: str) -> AsyncIterator[BrokerSettings]:
    settings = BrokerSettings(broker_url, prefix=f"h_broker_{uuid.uuid4().hex[:10]}",
                              ack_deadline_s=ACK_DEADLINE_S)
    yield settings
    await drop_names(settings)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(f"sqlite:///{tmp_path}/jobs.db") as database:
        yield database


async def _next(messages: AsyncIterator[AckableMessage | bytes]) -> AckableMessage:
    async with asyncio.timeout(WAIT_S):
        message = await anext(messages)
    assert isinstance(message, AckableMessage)
    return message


def _unacked(message: AckableMessage) -> AckableMessage:
    """``message`` as a worker sees it that dies after its claim, before its ack."""
    return AckableMessage(data=message.data, ack=lambda: None)


async def _claim_events(db: Database, job_id: int) -> int:
    return int(await db.fetchval("SELECT count(*) FROM job_events WHERE job_id = ? AND "
                                 "to_status = 'downloading'", (job_id,)))


async def test_a_wakeup_gets_the_job_claimed_and_run_once(db: Database,
                                                          settings: BrokerSettings) -> None:
    engine = LeaseOnlyEngine(db, kind="k")
    # The sweep runs once at start (nothing to claim yet), then not for an hour: only the
    # broker's wake-ups can get these jobs claimed.
    dispatcher = Dispatcher(engine, concurrency=2, sweep_s=3600, reap_s=3600, drain_s=5)
    stop = asyncio.Event()
    async with open_broker(settings, consumer=True) as broker, task_scope() as group:
        messages = deliveries(broker)
        running = group.create_task(dispatcher.run(messages, stop))
        await until(lambda: dispatcher.stats.sweeps == 1)
        enqueued = [await outbox.enqueue(db, "k", idempotency_key=f"k:{n}") for n in range(3)]
        assert await relay_once(db, broker, settings) == 3
        ids = {job.id for job in enqueued}
        await until(lambda: dispatcher.stats.processed == 3)
        stop.set()
        stats = await running
        await messages.aclose()
    assert engine.runs == dict.fromkeys(ids, 1)
    assert set((await jobs.job_statuses(db, list(ids))).values()) == {"completed"}
    assert stats.claimed == stats.claimed_on_wake == 3
    assert 1 <= stats.deliveries <= 3  # one wake-up may claim several due jobs
    assert await outbox.unsent_count(db) == 0


async def _force_redelivery(broker: AsyncBroker, settings: BrokerSettings,
                            messages: AsyncIterator[AckableMessage | bytes],
                            job: Job) -> list[AckableMessage]:
    """The deliveries that follow an unacked one, forced the way each broker redelivers."""
    if settings.kind == "nats":  # ack_wait expires: the next fetch gets it again
        return [await _next(messages)]
    # Redis re-claims entries idle past idle_timeout, but only after a read that returned
    # new entries: wait until the entry is idle that long, then send a second wake-up.
    from redis.asyncio import Redis

    client = Redis.from_url(settings.url)
    try:
        async def idle_ms() -> int:
            pending = await client.xpending_range(f"{settings.prefix}:wake",
                                                  f"{settings.prefix}:workers", "-", "+", 10)
            return min((int(entry["time_since_delivered"]) for entry in pending), default=0)

        idle = await idle_ms()
        while idle < ACK_DEADLINE_S * 1000:  # the broker's clock, not a guessed sleep
            await asyncio.sleep(0.05)
            idle = await idle_ms()
    finally:
        await client.aclose()
    await publish(broker, settings, Wakeup(job.id))
    return [await _next(messages), await _next(messages)]


@pytest.mark.slow
async def test_a_redelivered_wakeup_repeats_no_effect(db: Database,
                                                      settings: BrokerSettings) -> None:
    engine = LeaseOnlyEngine(db, kind="k")
    dispatcher = Dispatcher(engine, concurrency=1, sweep_s=3600, reap_s=3600, drain_s=5)
    job = await outbox.enqueue(db, "k", idempotency_key="k:1")
    async with task_scope() as group:
        async with open_broker(settings, consumer=True) as broker:
            await relay_once(db, broker, settings)
            messages = deliveries(broker)
            first = await _next(messages)
            await dispatcher.on_delivery(_unacked(first), group)  # claims, then "dies"
            await until(lambda: engine.runs.get(job.id) == 1 and not dispatcher._running)
            if settings.kind != "rabbitmq":
                again = await _force_redelivery(broker, settings, messages, job)
                for delivery in again:
                    await dispatcher.on_delivery(delivery, group)
            await messages.aclose()
        if settings.kind == "rabbitmq":  # the channel closed unacked: the queue redelivers
            async with open_broker(settings, consumer=True) as broker:
                messages = deliveries(broker)
                again = [await _next(messages)]
                await dispatcher.on_delivery(again[0], group)
                await messages.aclose()
    assert [Wakeup.decode(d.data) for d in again] == [Wakeup(job.id)] * len(again)
    assert dispatcher.stats.deliveries == 1 + len(again) >= 2
    assert dispatcher.stats.claimed == 1
    assert engine.runs == {job.id: 1}
    assert await _claim_events(db, job.id) == 1
    assert (await jobs.get_job(db, job.id)).status == "completed"


async def test_a_wakeup_for_an_unknown_job_is_logged_and_acked(
        db: Database, settings: BrokerSettings, caplog: pytest.LogCaptureFixture) -> None:
    engine = LeaseOnlyEngine(db, kind="k")
    dispatcher = Dispatcher(engine, concurrency=1, sweep_s=3600, reap_s=3600, drain_s=5)
    acks = []
    async with open_broker(settings, consumer=True) as broker, task_scope() as group:
        await publish(broker, settings, Wakeup(10**9))
        messages = deliveries(broker)
        message = await _next(messages)
        original_ack = message.ack

        async def ack() -> None:
            acks.append(message.data)
            result = original_ack()
            if result is not None:
                await result

        with caplog.at_level(logging.WARNING, logger="opusclip_lib.distributed.dispatch"):
            await dispatcher.on_delivery(AckableMessage(data=message.data, ack=ack), group)
        await messages.aclose()
    assert dispatcher.stats.unknown == 1
    assert dispatcher.stats.claimed == 0
    assert acks == [message.data]
    assert "unknown job 1000000000" in caplog.text


async def test_a_message_that_is_no_wakeup_is_logged_and_acked(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = Dispatcher(LeaseOnlyEngine(db, kind="k"), concurrency=1, sweep_s=3600,
                            reap_s=3600, drain_s=5)
    acks: list[bytes] = []
    async with task_scope() as group:
        with caplog.at_level(logging.WARNING, logger="opusclip_lib.distributed.dispatch"):
            for data in (b"not json", b'{"job_id": "7"}', b"[1]"):
                await dispatcher.on_delivery(
                    AckableMessage(data=data, ack=lambda data=data: acks.append(data)), group)
    assert dispatcher.stats.malformed == 3
    assert acks == [b"not json", b'{"job_id": "7"}', b"[1]"]
    assert "no wake-up" in caplog.text
