"""Caches: request keys, TTL, counting, errors never cached, single-flight, Redis round trip."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import (
    MISS,
    MemoryCache,
    RedisCache,
    Resilience,
    RetryPolicy,
    SingleFlight,
    defaults_for,
    request_key,
)
from opusclip_lib.resilience.fakes import FakeAPIError, FakeClock
from tests.waiting import until

URL = "https://www.googleapis.com/youtube/v3/videos"


def test_request_key_is_stable_and_hides_secrets() -> None:
    key = request_key("get", URL, {"id": "a,b", "key": "SECRET", "part": "snippet"})
    assert key == request_key("GET", URL, {"part": "snippet", "key": "SECRET", "id": "a,b"})
    assert key != request_key("GET", URL, {"part": "snippet", "key": "SECRET", "id": "a,c"})
    assert "SECRET" not in key
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    chat = "https://api.openai.com/v1/chat/completions"
    reordered = dict(reversed(body.items()))
    assert request_key("POST", chat, body=body) == request_key("POST", chat, body=reordered)
    assert request_key("POST", chat, body=b"\x01") != request_key("POST", chat, body=b"\x02")
    assert request_key("POST", chat) != request_key("GET", chat)


async def test_memory_cache_expires_after_ttl_and_keeps_last_good() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl_s=600, stale_ttl_s=3600, timer=clock)
    await cache.set("k", {"title": "clip"})
    clock.advance(599)
    assert await cache.get("k") == {"title": "clip"}
    clock.advance(2)
    assert await cache.get("k") is MISS
    assert await cache.get_stale("k") == {"title": "clip"}
    clock.advance(3600)
    assert await cache.get_stale("k") is MISS
    assert await MemoryCache().get_stale("never stored") is MISS


async def test_memory_cache_drops_its_oldest_store_when_full_or_expired() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl_s=10, stale_ttl_s=100, maxsize=2, timer=clock)
    await cache.set("a", 1)
    await cache.set("b", 2)
    await cache.set("a", 3)  # a store moves "a" behind "b"
    await cache.set("c", 4)  # full: "b", the oldest store, goes
    assert [await cache.get(key) for key in "abc"] == [3, MISS, 4]
    clock.advance(101)  # "a" and "c" are past even their last-good life
    await cache.set("d", 5)
    assert await cache.get_stale("a") is MISS
    assert await cache.get("d") == 5


async def test_hits_and_misses_are_counted_and_recorded() -> None:
    recorder = Recorder()
    clock = FakeClock()
    policy = Resilience("youtube", cache=MemoryCache(ttl_s=600, timer=clock), recorder=recorder)
    calls = 0

    async def videos() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"calls": calls}

    assert [await policy.call(videos, cache_key="k") for _ in range(3)] == [{"calls": 1}] * 3
    clock.advance(601)
    assert await policy.call(videos, cache_key="k") == {"calls": 2}  # expired: fetched again
    assert (policy.stats.hits, policy.stats.misses, policy.stats.hit_rate) == (2, 2, 0.5)
    lookups = recorder.frame("cache")
    assert lookups["hit"].tolist() == [False, True, True, False]
    assert set(lookups["name"]) == {"youtube"}


async def test_errors_are_never_cached() -> None:
    policy = Resilience("openai", cache=MemoryCache(), retry=RetryPolicy(max_retries=0))
    outcomes = [FakeAPIError(500), FakeAPIError(400), "answer"]

    async def complete() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    for status in (500, 400):
        with pytest.raises(FakeAPIError) as failed:
            await policy.call(complete, cache_key="k")
        assert failed.value.status_code == status
    assert await policy.call(complete, cache_key="k") == "answer"
    assert await policy.call(complete, cache_key="k") == "answer"  # now a hit: outcomes is empty
    assert policy.stats.misses == 3
    assert policy.stats.hits == 1


async def test_concurrent_misses_call_the_backend_once() -> None:
    policy = Resilience("openai", cache=MemoryCache())
    release = asyncio.Event()
    calls = 0

    async def slow_backend() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "shared"

    waiting = [asyncio.create_task(policy.call(slow_backend, cache_key="k")) for _ in range(50)]
    await until(lambda: policy.stats.misses == 50)  # all of them past the cache, sharing a load
    release.set()
    assert await asyncio.gather(*waiting) == ["shared"] * 50
    assert calls == 1
    assert policy.stats.misses == 50


@pytest.mark.looptime
async def test_single_flight_shares_errors_and_survives_a_cancelled_leader() -> None:
    """The loads take their time on looptime's fake loop clock, so who arrives when is exact."""
    flight = SingleFlight()
    started = asyncio.Event()

    async def failing() -> str:
        started.set()
        await asyncio.sleep(0.01)
        raise FakeAPIError(503)

    results = await asyncio.gather(*(flight.do("k", failing) for _ in range(5)),
                                   return_exceptions=True)
    assert all(isinstance(r, FakeAPIError) for r in results)
    assert len({id(r) for r in results}) == 1  # one call, one error, shared

    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.02)
        return f"load {loads}"

    leader = asyncio.create_task(flight.do("k", load))
    await until(lambda: loads == 1)
    follower = asyncio.create_task(flight.do("k", load))
    await asyncio.sleep(0.005)  # 5 ms into the leader's 20 ms load, the follower waiting on it
    leader.cancel()
    assert await follower == "load 2"  # the follower took over instead of being cancelled
    assert leader.cancelled()
    assert flight.in_flight == 0


@pytest.mark.redis
async def test_redis_cache_round_trip(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    cache = RedisCache(client, prefix=prefix, ttl_s=300, stale_ttl_s=3600)
    await cache.set("json", {"items": [{"id": "abc", "views": "12"}], "total": 1})
    await cache.set("bytes", b"\x89PNG\r\n")
    assert await cache.get("json") == {"items": [{"id": "abc", "views": "12"}], "total": 1}
    assert await cache.get("bytes") == b"\x89PNG\r\n"
    assert await cache.get("absent") is MISS
    assert 290 < await client.ttl(cache.data_key("json")) <= 300  # SETEX gave the key its TTL
    assert 3590 < await client.ttl(cache.stale_key("json")) <= 3600
    await client.delete(cache.data_key("json"))  # as if the TTL ran out
    assert await cache.get("json") is MISS
    assert await cache.get_stale("json") == {"items": [{"id": "abc", "views": "12"}], "total": 1}


@pytest.mark.redis
async def test_policy_shares_hits_through_redis(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    calls = 0

    async def videos() -> dict[str, str]:
        nonlocal calls
        calls += 1
        return {"title": "clip"}

    key = request_key("GET", URL, {"id": "abc"})
    first = defaults_for("youtube", cache=RedisCache(client, prefix=prefix))
    second = defaults_for("youtube", cache=RedisCache(client, prefix=prefix))  # another "process"
    assert await first.call(videos, cache_key=key) == {"title": "clip"}
    assert await second.call(videos, cache_key=key) == {"title": "clip"}
    assert calls == 1
    assert second.stats.hits == 1


async def test_redis_outage_degrades_to_misses() -> None:
    no_retries = Retry(NoBackoff(), 0)  # redis-py would otherwise spend seconds reconnecting
    async with Redis(host="127.0.0.1", port=1, retry=no_retries) as unreachable:
        policy = Resilience("youtube", cache=RedisCache(unreachable))

        async def videos() -> str:
            return "live"

        assert await policy.call(videos, cache_key="k") == "live"
        assert policy.stats.misses == 1
