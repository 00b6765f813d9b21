"""Read-through cache for video look-ups by YouTube id, in memory or in Redis (one server or a
cluster).

``VideoCache.get`` asks the store first and the database only on a miss, then fills the store.
Hits and misses are counted and recorded (``kind="cache"``), so a notebook can plot the hit
rate over time. Writers call :meth:`VideoCache.invalidate` after changing a video; entries also
expire after ``ttl_s`` so a missed invalidation heals itself.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from cachetools import TTLCache

from opusclip_lib.db import validate, videos
from opusclip_lib.db.models import Video
from opusclip_lib.redis_client import (
    AnyRedis,
    RedisGuard,
    RedisServiceError,
    RedisTimeouts,
    node_of,
    open_redis,
)

if TYPE_CHECKING:
    from opusclip_lib.db.database import Database

logger = logging.getLogger(__name__)


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
    """Shared by every process (and survives restarts); values are JSON with a TTL.

    ``client`` is a single Redis or a Redis Cluster (each key is one video, so no operation
    spans two slots). Redis down or hung is a miss, a skipped store, a skipped delete: logged,
    bounded by ``guard.timeouts.command_s``, and skipped at once for ``down_for_s`` after a
    failure, so the caller reads the database instead of waiting or failing. A skipped delete
    leaves the old entry until its TTL runs out, as a missed invalidation always does.
    """

    name = "redis"

    def __init__(self, client: AnyRedis, *, ttl_s: float = 300.0,
                 prefix: str = "opusclip:video:", guard: RedisGuard | None = None) -> None:
        self._client = client
        self._ttl_ms = int(ttl_s * 1000)
        self._prefix = prefix
        self.guard = guard if guard is not None else RedisGuard()

    @classmethod
    @asynccontextmanager
    async def from_url(cls, url: str, *, ttl_s: float = 300.0, prefix: str = "opusclip:video:",
                       timeouts: RedisTimeouts = RedisTimeouts()) -> AsyncIterator[RedisStore]:
        """``async with RedisStore.from_url(url) as store:`` -- owns and closes its client.

        ``url`` is ``redis://host:port/db`` or ``redis+cluster://host:port``.
        """
        async with open_redis(url, timeouts=timeouts) as client:
            yield cls(client, ttl_s=ttl_s, prefix=prefix, guard=RedisGuard(timeouts))

    async def get(self, key: str) -> Video | None:
        try:
            raw = await self._call(self._client.get, key, what="video cache read")
        except RedisServiceError as exc:
            logger.debug("video cache read treated as a miss: %s", exc)
            return None
        if raw is None:
            return None
        try:
            return Video.from_row(json.loads(raw))
        except (ValueError, TypeError, KeyError) as exc:  # not an entry this store wrote
            logger.warning("video cache read treated as a miss, stored value unreadable: %r", exc)
            return None

    async def set(self, key: str, video: Video) -> None:
        value = json.dumps(video.to_dict(), default=datetime.isoformat)
        try:
            await self._call(functools.partial(self._client.set, value=value, px=self._ttl_ms),
                             key, what="video cache store")
        except RedisServiceError as exc:
            logger.debug("video cache store skipped: %s", exc)

    async def delete(self, key: str) -> None:
        try:
            await self._call(self._client.delete, key, what="video cache invalidation")
        except RedisServiceError as exc:
            logger.warning("video cache invalidation of %s skipped (%s): the old entry stays "
                           "until its TTL runs out", key, exc)

    async def _call(self, command: Callable[[str], Awaitable[Any]], key: str, *,
                    what: str) -> Any:
        name = self._prefix + key
        return await self.guard.call(lambda: command(name), what=what,
                                     scope=node_of(self._client, name))


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
