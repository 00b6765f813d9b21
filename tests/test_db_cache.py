"""Read-through video cache (memory and Redis) and the API-call response cache."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from opusclip_lib.db import Database, api_calls, connect, videos
from opusclip_lib.db.cache import MemoryStore, RedisStore, Store, VideoCache
from opusclip_lib.redis_client import open_redis

TTL = 1.0  # long enough that a busy machine does not expire entries mid-test


@pytest.fixture
async def sqlite_db(tmp_path: object) -> AsyncIterator[Database]:
    async with connect(f"sqlite:///{tmp_path}/cache.db") as database:
        yield database


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore(ttl_s=TTL)
        return
    url = request.getfixturevalue("redis_url")
    async with RedisStore.from_url(url, ttl_s=TTL,
                                   prefix=f"test:{secrets.token_hex(4)}:") as redis_store:
        yield redis_store


async def test_read_through_counts_hits_and_misses(sqlite_db: Database, store: Store) -> None:
    video = await videos.insert_video(sqlite_db, "cachedVideo", title="Cached",
                                      metadata={"views": 3})
    cache = VideoCache(sqlite_db, store)
    sqlite_db.recorder.clear()

    assert await cache.get("cachedVideo") == video  # miss: read from the database
    assert await cache.get("cachedVideo") == video  # hit: same value, typed the same
    assert await cache.get("cachedVideo") == video
    assert await cache.get("unknownVid0") is None  # misses are not cached
    assert (cache.hits, cache.misses) == (2, 2)
    assert cache.hit_rate == 0.5

    queries = sqlite_db.recorder.frame("query")
    assert (queries["name"] == "get videos").sum() == 2  # only the misses reached SQL
    lookups = sqlite_db.recorder.frame("cache")
    assert list(lookups["hit"]) == [False, True, True, False]
    assert set(lookups["store"]) == {store.name}


async def test_invalidate_and_ttl_expiry(sqlite_db: Database, store: Store) -> None:
    video = await videos.insert_video(sqlite_db, "cachedVideo", title="Old")
    cache = VideoCache(sqlite_db, store)
    await cache.get("cachedVideo")
    await videos.update_video(sqlite_db, video.id, title="New")
    assert (await cache.get("cachedVideo")).title == "Old"  # stale until invalidated
    await cache.invalidate("cachedVideo")
    assert (await cache.get("cachedVideo")).title == "New"
    await asyncio.sleep(TTL + 0.1)
    await cache.get("cachedVideo")
    assert (cache.hits, cache.misses) == (1, 3)  # the entry expired after its TTL


async def test_api_calls_double_as_a_response_cache(db: Database) -> None:
    digest = api_calls.request_hash({"model": "gpt", "prompt": "hooks?"})
    assert digest == api_calls.request_hash({"prompt": "hooks?", "model": "gpt"})
    assert await api_calls.cached_response(db, "openai", "chat", digest) is None

    await api_calls.record_api_call(db, "openai", "chat", digest, status=500, latency_s=0.2)
    assert await api_calls.cached_response(db, "openai", "chat", digest) is None  # not 2xx
    call = await api_calls.record_api_call(db, "openai", "chat", digest, status=200,
                                           latency_s=1.5, cost_usd=0.002,
                                           response={"hooks": ["Wait for it"]})
    assert call.cost_usd == 0.002
    assert call.created_at is not None
    assert await api_calls.cached_response(db, "openai", "chat", digest) == {
        "hooks": ["Wait for it"]}
    await asyncio.sleep(0.1)
    assert await api_calls.cached_response(db, "openai", "chat", digest, max_age_s=0.05) is None
    assert [c.status for c in await api_calls.list_api_calls(db, provider="openai")] == [200, 500]


@pytest.mark.redis
async def test_an_unreadable_redis_entry_is_a_miss(sqlite_db: Database, redis_url: str) -> None:
    prefix = f"test:{secrets.token_hex(4)}:"
    async with RedisStore.from_url(redis_url, prefix=prefix) as redis_store, \
            open_redis(redis_url) as someone_else:
        video = await videos.insert_video(sqlite_db, "garbledVid1", title="Garbled")
        await someone_else.set(prefix + "garbledVid1", b"not json")
        cache = VideoCache(sqlite_db, redis_store)
        assert await cache.get("garbledVid1") == video  # from the database, then stored again
        assert await cache.get("garbledVid1") == video
        assert cache.hits == 1
        await redis_store.delete("garbledVid1")
