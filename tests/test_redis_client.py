"""The Redis connection module without a server: URLs, timeouts and the outage guard."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from opusclip_lib.redis_client import (
    RedisConfigurationError,
    RedisGuard,
    RedisServiceError,
    RedisSkippedError,
    RedisTimeouts,
    RedisUnavailableError,
    is_cluster_url,
    redis_client,
)
from opusclip_lib.resilience.fakes import FakeClock


async def test_urls_choose_a_single_server_or_a_cluster() -> None:
    single = redis_client("redis://127.0.0.1:6379/0")
    cluster = redis_client("redis+cluster://127.0.0.1:7000")
    try:
        assert isinstance(single, Redis)
        assert isinstance(cluster, RedisCluster)
        assert is_cluster_url("rediss+cluster://h:1")
        assert not is_cluster_url("redis://h:1/0")
    finally:
        await single.aclose()
        await cluster.aclose()


async def test_clients_get_the_explicit_timeouts() -> None:
    client = redis_client("redis://127.0.0.1:6379/0", timeouts=RedisTimeouts(connect_s=0.1,
                                                                             socket_s=0.2))
    try:
        options = client.connection_pool.connection_kwargs
        assert options["socket_connect_timeout"] == 0.1
        assert options["socket_timeout"] == 0.2
    finally:
        await client.aclose()


@pytest.mark.parametrize("url", ["memcached://user:s3cret@h:1", "user:s3cret@h:1",
                                 "user:s3cret@h://x", "redis+cluster://user:s3cret@h:7000/2",
                                 "redis://user:s3cret@h:port/0",
                                 "redis://h:1/0?socket_timeout=s3cret"])
def test_bad_urls_are_refused_without_quoting_the_password(url: str) -> None:
    with pytest.raises(RedisConfigurationError) as refused:
        redis_client(url)
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("field", ["connect_s", "socket_s", "command_s"])
def test_timeouts_must_be_positive_and_finite(field: str) -> None:
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=field):
            RedisTimeouts(**{field: bad})


def guard_with_clock() -> tuple[RedisGuard, FakeClock]:
    clock = FakeClock()
    return RedisGuard(RedisTimeouts(command_s=0.05, down_for_s=2.0), clock=clock), clock


async def refused() -> None:
    raise RedisConnectionError("Error 111 connecting")


async def answered() -> str:
    return "ok"


async def test_after_a_failure_calls_skip_redis_until_down_for_s_has_passed() -> None:
    guard, clock = guard_with_clock()
    with pytest.raises(RedisUnavailableError):
        await guard.call(refused, what="read")
    with pytest.raises(RedisSkippedError):
        await guard.call(answered, what="read")  # not even tried
    clock.advance(2.0)
    assert await guard.call(answered, what="read") == "ok"
    assert (guard.failures, guard.skipped) == (1, 1)


async def test_a_hung_operation_fails_within_command_s() -> None:
    guard, _ = guard_with_clock()
    never = asyncio.Event()
    async with asyncio.timeout(5):  # a hang guard; the guard's own bound is 0.05 s
        with pytest.raises(RedisUnavailableError, match="did not answer in time"):
            await guard.call(never.wait, what="read")
    assert guard.is_down()


async def test_a_dead_node_does_not_close_the_others() -> None:
    guard, _ = guard_with_clock()
    with pytest.raises(RedisUnavailableError):
        await guard.call(refused, what="read", scope="127.0.0.1:7000")
    assert guard.is_down("127.0.0.1:7000")
    assert await guard.call(answered, what="read", scope="127.0.0.1:7001") == "ok"


async def test_a_refused_command_is_not_an_outage() -> None:
    guard, _ = guard_with_clock()

    async def wrong_type() -> None:
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    with pytest.raises(RedisServiceError) as raised:
        await guard.call(wrong_type, what="read")
    assert not isinstance(raised.value, RedisUnavailableError)
    assert not guard.is_down()
