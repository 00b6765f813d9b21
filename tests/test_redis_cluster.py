"""The caches and the live feed on a real local Redis Cluster (3 primaries, 3 replicas, started
by the ``redis_cluster`` fixture with the machine's ``redis-server``), a primary failover under
load, and the bad inputs: a cluster URL on a single Redis, a cluster in ``cluster_state:fail``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from opusclip_lib.bench.redis_failover import report, run_drill
from opusclip_lib.db import connect, videos
from opusclip_lib.db.cache import RedisStore, VideoCache
from opusclip_lib.monitoring import open_feed
from opusclip_lib.monitoring.redis_pubsub import RedisPubSub
from opusclip_lib.redis_client import (
    NotAClusterError,
    RedisClusterDownError,
    RedisUnavailableError,
    check_redis,
    open_redis,
)
from opusclip_lib.redis_client.local_servers import LocalCluster, ScratchRedis
from opusclip_lib.resilience import MISS, RedisCache

BOUND_S = 30.0  # a hang guard only


def prefix() -> str:
    return f"opusclip:test:{secrets.token_hex(4)}:"


async def test_api_cache_keeps_a_key_and_its_stale_copy_in_one_slot(
        redis_cluster: LocalCluster) -> None:
    async with open_redis(redis_cluster.url) as client:
        await check_redis(client)
        cache = RedisCache(client, prefix=prefix(), ttl_s=300, stale_ttl_s=3600)
        for n in range(20):  # keys spread over the three primaries
            await cache.set(f"key{n}", {"n": n})
        assert [await cache.get(f"key{n}") for n in range(20)] == [{"n": n} for n in range(20)]
        assert await cache.get_stale("key7") == {"n": 7}
        slots = {client.keyslot(cache.data_key(f"key{n}")) for n in range(20)}
        assert len({client.get_node_from_key(cache.data_key(f"key{n}")).name
                    for n in range(20)}) == 3
        assert all(client.keyslot(cache.data_key(f"key{n}"))
                   == client.keyslot(cache.stale_key(f"key{n}")) for n in range(20))
        assert len(slots) == 20


async def test_video_cache_on_the_cluster(redis_cluster: LocalCluster, tmp_path: Path) -> None:
    async with connect(f"sqlite:///{tmp_path}/videos.db") as db, \
            RedisStore.from_url(redis_cluster.url, prefix=prefix()) as store:
        video = await videos.insert_video(db, "clusterVid1", title="On a cluster")
        cache = VideoCache(db, store)
        assert await cache.get("clusterVid1") == video
        assert await cache.get("clusterVid1") == video
        assert cache.hits == 1


async def test_feed_uses_sharded_pub_sub_on_the_cluster(redis_cluster: LocalCluster,
                                                         tmp_path: Path) -> None:
    channel = f"opusclip_test_{secrets.token_hex(4)}"
    async with open_redis(redis_cluster.url) as client:
        owner = client.get_node_from_key(channel).port
    async with open_feed(f"sqlite:///{tmp_path}/feed.db", redis_cluster.url,
                         channel=channel) as feed, feed.updates() as updates:
        shard_subscribers = redis_cluster.cli(owner, "PUBSUB", "SHARDNUMSUB", channel)
        classic_subscribers = redis_cluster.cli(owner, "PUBSUB", "NUMSUB", channel)
        await feed.publish({"job_id": 1, "status": "pending"})
        async with asyncio.timeout(BOUND_S):
            update = await anext(updates)
    assert shard_subscribers.split() == [channel, "1"]
    assert classic_subscribers.split() == [channel, "0"]
    assert update["job_id"] == 1


async def test_a_cluster_url_on_a_single_redis_says_so(scratch_redis: ScratchRedis) -> None:
    with pytest.raises(NotAClusterError, match="without cluster mode"):
        async with asyncio.timeout(BOUND_S), \
                open_redis(f"redis+cluster://127.0.0.1:{scratch_redis.port}"):
            pass


async def test_a_failed_cluster_is_a_typed_error_and_the_caches_degrade(
        fresh_cluster: LocalCluster, tmp_path: Path) -> None:
    async with open_redis(fresh_cluster.url) as client, \
            connect(f"sqlite:///{tmp_path}/videos.db") as db:
        video = await videos.insert_video(db, "failedClust", title="Cluster down")
        await check_redis(client)  # learns the slot map
        lost = fresh_cluster.primaries()[-1]
        orphan = fresh_cluster.replica_of(lost)
        # Sharded pub/sub goes on in a failed cluster for slots whose primary lives
        # (cluster-allow-pubsubshard-when-down): pick a channel of the dead shard.
        dead_channel = next(name for name in (f"opusclip_test_{n}" for n in range(1000))
                            if client.get_node_from_key(name).port == lost)
        fresh_cluster.kill(orphan)
        fresh_cluster.kill(lost)  # its slots have no live copy left
        survivor = fresh_cluster.live_ports()[0]
        deadline = time.monotonic() + BOUND_S
        while fresh_cluster.info(survivor, "CLUSTER", "INFO").get("cluster_state") != "fail":
            assert time.monotonic() < deadline, "the cluster never reported cluster_state:fail"
            await asyncio.sleep(0.1)

        async with asyncio.timeout(BOUND_S):
            with pytest.raises(RedisClusterDownError, match="cluster_state:fail"):
                await check_redis(client)
            cache = RedisCache(client, prefix=prefix())
            await cache.set("k", 1)
            assert await cache.get("k") is MISS
            video_cache = VideoCache(db, RedisStore(client, prefix=prefix()))
            assert await video_cache.get("failedClust") == video
            with pytest.raises(RedisUnavailableError) as publishing:
                await RedisPubSub(client, dead_channel).publish({"job_id": 1})
        assert not isinstance(publishing.value, RedisError)


async def test_primary_failover_under_load(fresh_cluster: LocalCluster, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """Crash the primary that owns the feed's channel while caches and the feed are busy."""
    before = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
    async with connect(f"sqlite:///{tmp_path}/jobs.db") as db:
        with caplog.at_level(logging.WARNING):
            result = await run_drill(fresh_cluster, db, keys=100, before=300, after=200,
                                     max_s=BOUND_S)
    left = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()} - before
    print()
    report(result)  # the gap and the hit rates, for the log (not asserted: wall-clock)
    rates = result.hit_rates()
    assert result.escaped == []
    assert result.promoted is not None  # the replica took over
    assert rates["during"] < rates["before"]  # the gap was real, and degraded to misses
    assert rates["after"] >= 0.9 * rates["before"]  # the client found the new topology
    assert "failed during cache read" in caplog.text  # the degradation was logged
    assert result.feed_reconnects >= 1
    assert result.delivered_after_kill > 0  # the listener follows the channel's new owner
    assert result.board_matches_database
    assert left == set()  # no listener, poller or redis-py repair task outlives the drill
