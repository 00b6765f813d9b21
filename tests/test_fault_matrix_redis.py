"""Redis faults, reproduced for real, against every Redis user in the library.

Faults: a closed port, a loopback listener that accepts and never answers, and a scratch
``redis-server`` paused with ``CLIENT PAUSE`` (never the shared Redis). Users: the API response
cache (``RedisCache``), the database read-through cache (``VideoCache`` over ``RedisStore``) and
the live feed (``RedisPubSub``). For each pair:

* no redis-py exception reaches the caller: the caches answer a miss (the video comes from the
  database), the feed raises the project's ``RedisUnavailableError``;
* within ``BOUND_S``, a hang guard only: one call waits at most ``RedisTimeouts.command_s``, and
  the next call skips Redis without waiting (``guard.skipped``), so two cached calls no longer
  cost two timeouts;
* no task is left running;
* once Redis is back (and ``down_for_s`` has passed on a fake clock), the next operation
  succeeds through the same client.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from opusclip_lib.db import connect, videos
from opusclip_lib.db.cache import RedisStore, VideoCache
from opusclip_lib.monitoring.redis_pubsub import RedisPubSub
from opusclip_lib.monitoring.updates import Update
from opusclip_lib.redis_client import RedisGuard, RedisTimeouts, RedisUnavailableError, open_redis
from opusclip_lib.redis_client.local_servers import HungListener, ScratchRedis
from opusclip_lib.resilience import MISS, RedisCache
from opusclip_lib.resilience.fakes import FakeClock
from tests.waiting import until

BOUND_S = 10.0  # generous: catches hangs, not slowness (a call is bounded by command_s)
TIMEOUTS = RedisTimeouts()  # the defaults users get


@dataclass
class Fault:
    name: str
    url: str
    heal: Callable[[], Awaitable[None]]


@pytest.fixture(params=["closed port", "hung listener", "paused redis"],
                ids=["redis-closed port", "redis-hung listener", "redis-paused"])  # matrix columns
async def fault(request: pytest.FixtureRequest) -> AsyncIterator[Fault]:
    """A Redis URL that fails the way ``request.param`` says, and how to bring Redis back
    there (a scratch ``redis-server`` on the same port)."""
    if request.param == "paused redis":
        scratch: ScratchRedis = request.getfixturevalue("scratch_redis")
        scratch.pause()

        async def restart() -> None:
            scratch.restart()

        yield Fault(request.param, scratch.url, restart)
        return
    request.getfixturevalue("redis_server_binary")  # skips (fails under CI) without it
    listener = None
    if request.param == "hung listener":
        listener = HungListener()
        await listener.start()
        port = listener.port
    else:
        port = request.getfixturevalue("closed_port")
    replacement = ScratchRedis(port=port)

    async def bring_up() -> None:
        if listener is not None:
            await listener.close()
        replacement.restart()

    try:
        yield Fault(request.param, f"redis://127.0.0.1:{port}/0", bring_up)
    finally:
        replacement.kill()
        if listener is not None:
            await listener.close()


def other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def test_api_cache_degrades_to_misses_and_recovers(fault: Fault) -> None:
    clock = FakeClock()
    guard = RedisGuard(TIMEOUTS, clock=clock)
    before = other_tasks()
    async with open_redis(fault.url) as client:
        cache = RedisCache(client, prefix=f"opusclip:test:{secrets.token_hex(4)}:", guard=guard)
        async with asyncio.timeout(BOUND_S):
            await cache.set("k", {"v": 1})  # fails: skipped, not raised
            during = await cache.get("k")  # skipped at once: Redis failed a moment ago
        assert during is MISS
        assert guard.failures == 1
        assert guard.skipped == 1
        assert other_tasks() == before

        await fault.heal()
        clock.advance(TIMEOUTS.down_for_s)
        async with asyncio.timeout(BOUND_S):
            await cache.set("k", {"v": 1})
            after = await cache.get("k")
        assert after == {"v": 1}
    assert other_tasks() == before


async def test_video_cache_reads_the_database_and_recovers(fault: Fault, tmp_path: Path) -> None:
    clock = FakeClock()
    guard = RedisGuard(TIMEOUTS, clock=clock)
    before = other_tasks()
    async with connect(f"sqlite:///{tmp_path}/videos.db") as db, open_redis(fault.url) as client:
        video = await videos.insert_video(db, "cachedVideo", title="Cached")
        cache = VideoCache(db, RedisStore(client, prefix=f"opusclip:test:{secrets.token_hex(4)}:",
                                          guard=guard))
        async with asyncio.timeout(BOUND_S):
            first = await cache.get("cachedVideo")
            second = await cache.get("cachedVideo")
            await cache.invalidate("cachedVideo")  # skipped with a warning, not raised
        assert first == video
        assert second == video
        assert cache.hits == 0
        assert guard.failures == 1
        assert guard.skipped == 4  # a store after each miss, the second read, the delete
        assert other_tasks() == before

        await fault.heal()
        clock.advance(TIMEOUTS.down_for_s)
        async with asyncio.timeout(BOUND_S):
            assert await cache.get("cachedVideo") == video  # a miss that fills Redis
            assert await cache.get("cachedVideo") == video
        assert cache.hits == 1
    assert other_tasks() == before


class Collected:
    def __init__(self) -> None:
        self.payloads: list[str | bytes] = []
        self.errors: list[BaseException] = []

    def deliver(self, update: Update) -> None:
        raise AssertionError("RedisPubSub hands encoded payloads to receive()")

    def receive(self, payload: str | bytes) -> None:
        self.payloads.append(payload)

    def fail(self, error: BaseException) -> None:
        self.errors.append(error)


async def test_feed_raises_a_typed_error_and_recovers(fault: Fault) -> None:
    before = other_tasks()
    async with open_redis(fault.url) as client:
        feed = RedisPubSub(client, f"opusclip_test_{secrets.token_hex(4)}")
        with pytest.raises(RedisUnavailableError) as publishing:
            async with asyncio.timeout(BOUND_S):
                await feed.publish({"job_id": 1, "status": "pending"})
        assert not isinstance(publishing.value, RedisError)
        with pytest.raises(RedisUnavailableError) as listening:
            async with asyncio.timeout(BOUND_S), feed.listen(Collected()):
                pass
        assert not isinstance(listening.value, RedisError)
        assert other_tasks() == before

        await fault.heal()
        sink = Collected()
        async with asyncio.timeout(BOUND_S):
            async with feed.listen(sink):
                await feed.publish({"job_id": 1, "status": "pending"})
                await until(lambda: bool(sink.payloads), poll_s=0.01)  # the listener delivers it
        assert len(sink.payloads) == 1
        assert sink.errors == []
    assert other_tasks() == before


async def test_the_bound_holds_on_a_client_built_with_redis_py_defaults() -> None:
    """A caller's own ``Redis(...)`` waits 5 s per socket read and retries three times; the
    cache's guard still answers a miss within ``command_s`` (``asyncio.timeout``)."""
    listener = HungListener()
    await listener.start()
    clock = FakeClock()
    guard = RedisGuard(TIMEOUTS, clock=clock)
    try:
        async with Redis(host="127.0.0.1", port=listener.port) as client:
            cache = RedisCache(client, guard=guard)
            async with asyncio.timeout(BOUND_S):  # redis-py alone would take 20 s and more
                assert await cache.get("k") is MISS
            assert guard.failures == 1
    finally:
        await listener.close()


async def heard(feed: RedisPubSub, sink: Collected) -> bool:
    """Whether an update got through; if none has yet, publish one more (a publish into an
    outage fails: its connection reconnects on the next call)."""
    if sink.payloads:
        return True
    with suppress(RedisUnavailableError):
        await feed.publish({"job_id": 1, "status": "pending"})
    return False


async def test_feed_listener_reconnects_in_place_after_a_restart(
        scratch_redis: ScratchRedis) -> None:
    """A crashed and restarted Redis: the same listener subscribes again by itself (redis-py
    reconnects on its next read, or our loop polls again after a failed one). What was published
    while it was away is lost (at most once), so the test publishes until one gets through."""
    before = other_tasks()
    async with open_redis(scratch_redis.url) as client:
        feed = RedisPubSub(client, f"opusclip_test_{secrets.token_hex(4)}")
        sink = Collected()
        async with feed.listen(sink):
            scratch_redis.restart()  # SIGKILL, then a new empty server on the same port
            async with asyncio.timeout(BOUND_S):
                await until(partial(heard, feed, sink), poll_s=0.05)
        assert sink.errors == []
    assert other_tasks() == before


async def test_feed_listener_rides_out_an_outage(scratch_redis: ScratchRedis) -> None:
    """Redis down long enough for the listener to notice: it logs the loss once, keeps trying
    with backoff, and hears updates again once Redis is back."""
    async with open_redis(scratch_redis.url) as client:
        feed = RedisPubSub(client, f"opusclip_test_{secrets.token_hex(4)}")
        sink = Collected()
        async with feed.listen(sink):
            scratch_redis.kill()
            async with asyncio.timeout(BOUND_S):  # until the listener has met the outage
                await until(lambda: feed.reconnects > 0, poll_s=0.05)
            scratch_redis.restart()
            async with asyncio.timeout(BOUND_S):
                await until(partial(heard, feed, sink), poll_s=0.05)
        assert feed.reconnects == 1  # one outage, however many attempts it took
        assert sink.errors == []
