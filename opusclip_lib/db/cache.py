"""Read-through cache for video look-ups by YouTube id, in memory or in Redis.

``VideoCache.get`` asks the store first and the database only on a miss, then fills the store.
Hits and misses are counted and recorded (``kind="cache"``), so a notebook can plot the hit
rate over time. Writers call :meth:`VideoCache.invalidate` after changing a video; entries also
expire after ``ttl_s`` so a missed invalidation heals itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import redis.asyncio as redis
from cachetools import TTLCache

from opusclip_lib.db import validate, videos
from opusclip_lib.db.models import Video

if TYPE_CHECKING:
    from opusclip_lib.db.database import Database


class Store(Protocol):
    name: str

    async def get(self, key: str) -> Video | None: ...

    async def set(self, key: str, video: Video) -> None: ...

    async def delete(self, key: str) -> None: ...


class MemoryStore:
    """One process, no serialization: the fastest, and lost when the process ends."""

    name = "memory"

    def __init__(self, *, maxsize: int = 10_000, ttl_s: float = 300.0) -> None:
        self._entries: TTLCache[str, Video] = TTLCache(maxsize=maxsize, ttl=ttl_s)

    async def get(self, key: str) -> Video | None:
        return self._entries.get(key)

    async def set(self, key: str, video: Video) -> None:
        self._entries[key] = video

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)


class RedisStore:
    """Shared by every process (and survives restarts); values are JSON with a TTL."""

    name = "redis"

    def __init__(self, client: redis.Redis, *, ttl_s: float = 300.0,
                 prefix: str = "opusclip:video:") -> None:
        self._client = client
        self._ttl_ms = int(ttl_s * 1000)
        self._prefix = prefix

    @classmethod
    @asynccontextmanager
    async def from_url(cls, url: str, *, ttl_s: float = 300.0,
                       prefix: str = "opusclip:video:") -> AsyncIterator[RedisStore]:
        """``async with RedisStore.from_url(url) as store:`` -- owns and closes its client."""
        client = redis.Redis.from_url(url)
        try:
            yield cls(client, ttl_s=ttl_s, prefix=prefix)
        finally:
            await client.aclose()

    async def get(self, key: str) -> Video | None:
        raw = await self._client.get(self._prefix + key)
        return None if raw is None else Video.from_row(json.loads(raw))

    async def set(self, key: str, video: Video) -> None:
        await self._client.set(self._prefix + key,
                               json.dumps(video.to_dict(), default=datetime.isoformat),
                               px=self._ttl_ms)

    async def delete(self, key: str) -> None:
        await self._client.delete(self._prefix + key)


class VideoCache:
    """``await cache.get(youtube_id)``: the store if it has it, else the database (then stored)."""

    def __init__(self, db: Database, store: Store) -> None:
        self.db = db
        self.store = store
        self.hits = 0
        self.misses = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    async def get(self, youtube_id: str) -> Video | None:
        validate.youtube_id(youtube_id)
        recorder = self.db.recorder
        start = recorder.now()
        video = await self.store.get(youtube_id)
        hit = video is not None
        if hit:
            self.hits += 1
        else:
            self.misses += 1
            video = await videos.find_video(self.db, youtube_id)
            if video is not None:
                await self.store.set(youtube_id, video)
        recorder.add("cache", "video", start=start, seconds=recorder.now() - start,
                     store=self.store.name, hit=hit)
        return video

    async def invalidate(self, youtube_id: str) -> None:
        await self.store.delete(youtube_id)
