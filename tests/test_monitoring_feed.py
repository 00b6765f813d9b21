"""The live status feed on each transport: every committed state change reaches the subscriber,
in order, with its latency recorded; closing the feed leaves no connection, subscription or task.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import RedisCluster

from opusclip_lib.db import ConnectionLostError, Database, clear, connect, jobs
from opusclip_lib.metrics import percentiles
from opusclip_lib.monitoring import (
    Feed,
    Subscription,
    Update,
    choose_transport,
    job_update,
    open_feed,
)
from opusclip_lib.monitoring.pg_notify import LISTENER_APPLICATION
from opusclip_lib.redis_client import open_redis
from tests.waiting import until

STATUSES = ("pending", "downloading", "transcribing", "analyzing", "rendering", "completed")
JOBS = 4
P95_LIMIT_MS = {"postgres": 100, "redis": 100, "polling": 200}  # polling: 50 ms interval


@pytest.fixture(params=["polling", "postgres", "redis"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def servers(transport: str, tmp_path: Path, request: pytest.FixtureRequest,
            scratch_namespaces: Callable[[str], str]) -> tuple[str, str | None]:
    """(database URL, Redis URL) for ``transport``: a private PG schema or a SQLite file."""
    if transport == "postgres":
        return scratch_namespaces(request.getfixturevalue("postgres_url")), None
    redis_url = request.getfixturevalue("redis_url") if transport == "redis" else None
    return f"sqlite:///{tmp_path}/feed.db", redis_url


@asynccontextmanager
async def feed_on(transport: str,
                  servers: tuple[str, str | None]) -> AsyncIterator[tuple[Database, Feed]]:
    """An emptied database and a feed forced onto ``transport``, on a channel of its own."""
    url, redis_url = servers
    channel = f"opusclip_test_{secrets.token_hex(4)}" if redis_url else None
    async with connect(url, min_size=1, max_size=4) as db:
        await clear(db)  # the PG schema is shared by this session's tests
        async with open_feed(db, redis_url, transport=transport, channel=channel) as feed:
            yield db, feed


async def run_jobs(db: Database, feed: Feed, count: int) -> None:
    """Walk ``count`` jobs through the whole pipeline, publishing after every commit (what the
    workflow's ``on_change`` hook does)."""
    for _ in range(count):
        job = await jobs.enqueue(db, "pipeline")
        await feed.publish(job_update(job))
        [job] = await jobs.claim(db, "worker-1")
        await feed.publish(job_update(job))
        for status in STATUSES[2:]:
            job = await jobs.advance(db, job.id, status, worker="worker-1", stage=status,
                                     progress=0.5)
            await feed.publish(job_update(job))


async def collect(updates: Subscription, count: int, timeout_s: float = 5.0) -> list[Update]:
    received: list[Update] = []
    async with asyncio.timeout(timeout_s):
        async for update in updates:
            received.append(update)
            if len(received) == count:
                break
    return received


async def test_every_state_change_reaches_the_subscriber_in_order(
        transport: str, servers: tuple[str, str | None]) -> None:
    async with feed_on(transport, servers) as (db, feed):
        assert feed.transport == transport
        async with feed.updates() as updates:
            await run_jobs(db, feed, JOBS)
            received = await collect(updates, JOBS * len(STATUSES))
            await asyncio.sleep(0.1)
            assert updates.pending() == 0  # nothing delivered twice
    by_job: dict[int, list[str]] = {}
    for update in received:
        by_job.setdefault(update["job_id"], []).append(update["status"])
        assert {"job_id", "video_id", "kind", "status", "stage", "progress", "at",
                "published_at", "latency_s"} <= update.keys()
    assert list(by_job.values()) == [list(STATUSES)] * JOBS
    assert received[-1]["progress"] == 1.0
    assert received[-1]["kind"] == "pipeline"
    events = feed.recorder.frame("feed")
    assert len(events) == len(received)
    assert events["ok"].all()
    assert set(events["name"]) == {transport}
    table = percentiles(events, "name")
    print(f"\n{transport} feed latency:\n{table}")
    assert table.loc[transport, "p95_ms"] < P95_LIMIT_MS[transport]


async def listening(transport: str, db: Database, channel: str | None,
                    redis_url: str | None) -> int:
    """Server-side count of subscribers on the feed's channel, seen from a new connection."""
    if transport == "redis":
        assert redis_url is not None
        assert channel is not None
        async with open_redis(redis_url) as redis:
            if isinstance(redis, RedisCluster):  # sharded pub/sub, counted on the channel's shard
                return int((await redis.pubsub_shardnumsub(
                    channel, target_nodes=redis.get_node_from_key(channel)))[0][1])
            return int((await redis.pubsub_numsub(channel))[0][1])
    if transport == "postgres":
        async with connect(db.url, min_size=1, max_size=1, migrate=False) as observer:
            return int(await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = ? "
                "AND query = ?", (LISTENER_APPLICATION, f'LISTEN "{channel}"')))
    return 0


async def test_closing_the_feed_leaves_nothing_behind(
        transport: str, servers: tuple[str, str | None]) -> None:
    redis_url = servers[1]
    tasks_before = asyncio.all_tasks()
    async with feed_on(transport, servers) as (db, feed):
        updates = feed.updates()
        assert await listening(transport, db, feed.channel, redis_url) == (
            transport != "polling")
        assert len(asyncio.all_tasks() - tasks_before) == (transport != "postgres")
    async def stopped() -> bool:
        return not await listening(transport, db, feed.channel, redis_url)

    async with asyncio.timeout(3):  # the server notices a closed socket a moment later
        await until(stopped, poll_s=0.02)
    assert asyncio.all_tasks() - tasks_before == set()
    assert [update async for update in updates] == []  # the subscription ended
    with pytest.raises(RuntimeError, match="closed"):
        await feed.publish({"job_id": 1})


async def test_polling_feed_from_a_url_sees_another_pool_s_commits(tmp_path: Path) -> None:
    """The polled feed reads the database, so a writer with its own pool (another process,
    here another pool) is seen without publishing anything."""
    url = f"sqlite:///{tmp_path}/shared.db"
    async with connect(url) as writer, open_feed(url) as feed:
        assert feed.transport == "polling"
        async with feed.updates() as updates:
            job = await jobs.enqueue(writer, "pipeline")
            await jobs.cancel(writer, job.id, reason="changed my mind")
            received = await collect(updates, 2)
    assert [(u["job_id"], u["status"]) for u in received] == [(job.id, "pending"),
                                                              (job.id, "cancelled")]
    assert received[1]["message"] == "changed my mind"


def test_transport_is_chosen_by_backend_then_redis() -> None:
    assert choose_transport("postgresql", None) == "postgres"
    assert choose_transport("postgresql", "redis://x") == "postgres"
    assert choose_transport("sqlite", "redis://x") == "redis"
    assert choose_transport("mysql", None) == "polling"
    assert choose_transport("postgresql", "redis://x", "redis") == "redis"
    assert choose_transport("postgresql", None, "polling") == "polling"
    with pytest.raises(ValueError, match="needs a PostgreSQL"):
        choose_transport("sqlite", None, "postgres")
    with pytest.raises(ValueError, match="needs redis_url"):
        choose_transport("sqlite", None, "redis")


async def test_a_lost_listen_connection_ends_subscriptions_with_the_error(
        postgres_url: str, scratch_namespaces: Callable[[str], str]) -> None:
    async with connect(scratch_namespaces(postgres_url), min_size=1, max_size=2) as db, \
            open_feed(db) as feed:
        updates = feed.updates()
        await db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                         "application_name = ? AND query = ?",
                         (LISTENER_APPLICATION, f'LISTEN "{feed.channel}"'))
        with pytest.raises(ConnectionLostError, match="LISTEN connection closed"):
            async with asyncio.timeout(5):
                await anext(updates)
        await feed.publish({"job_id": 1, "status": "pending"})  # publishing still works
