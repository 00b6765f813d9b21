"""Response caches with a TTL, plus a last-good copy that outlives it for stale fallbacks.

Two backends share one small interface (``get``, ``set``, ``get_stale``, all async): in memory
(cachetools) for one process, Redis when several processes or notebook kernels should share hits.
Neither knows about errors: the policy only ever stores successful results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, cast

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

DEFAULT_TTL: Final = 600.0  # 10 minutes: inside the 5-30 minutes that suit these APIs


class _Miss:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


#: Returned by ``get`` and ``get_stale`` when nothing is stored (``None`` is a valid JSON value).
MISS: Final = _Miss()


def request_key(method: str, url: str, params: Mapping[str, Any] | None = None,
                body: Any = None) -> str:
    """A stable key for a request: the same call always maps to the same key.

    Parameters are sorted and the body is canonical JSON (bytes are hashed as they are), so
    ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` share a key. The whole request is hashed, so
    secrets in it (YouTube's ``key=``) never appear in Redis in clear text.
    """
    digest = hashlib.sha256(f"{method.upper()} {url}\n".encode())
    digest.update(_canonical_json(params or {}) + b"\n")
    if isinstance(body, bytes | bytearray | memoryview):
        digest.update(body)
    elif body is not None:
        digest.update(_canonical_json(body))
    return digest.hexdigest()


#: One encoder for every key: ``json.dumps`` with options builds a new encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _canonical_json(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode()


class Cache(Protocol):
    async def get(self, key: str) -> Any: ...

    async def set(self, key: str, value: Any) -> None: ...

    async def get_stale(self, key: str) -> Any: ...


class MemoryCache:
    """A per-process cache: ``ttl`` seconds fresh, then kept ``stale_ttl`` seconds as last-good.

    One ``TTLCache`` holds both lives: each entry is ``(value, fresh until, stale until)`` and
    lives as long as the longer of the two. Two tables (one per life) cost two inserts, and two
    evictions once full, on every store: a third of the policy's CPU per call.
    Values are stored as they are, not copied: do not mutate what you get back. ``timer`` lets
    tests move time forward without sleeping.
    """

    def __init__(self, *, ttl: float = DEFAULT_TTL, stale_ttl: float | None = None,
                 maxsize: int = 1024, timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._stale_ttl = stale_ttl
        self._timer = timer
        self._entries: TTLCache[str, tuple[Any, float, float]] = TTLCache(
            maxsize, max(ttl, stale_ttl or 0.0), timer)

    async def get(self, key: str) -> Any:
        try:  # one look-up; TTLCache.get would do two (``in``, then ``[]``)
            value, fresh_until, _ = self._entries[key]
        except KeyError:
            return MISS
        return value if self._timer() < fresh_until else MISS

    async def set(self, key: str, value: Any) -> None:
        now = self._timer()
        stale_until = -math.inf if self._stale_ttl is None else now + self._stale_ttl
        self._entries[key] = (value, now + self.ttl, stale_until)

    async def get_stale(self, key: str) -> Any:
        try:
            value, _, stale_until = self._entries[key]
        except KeyError:
            return MISS
        return value if self._timer() < stale_until else MISS


def encode_value(value: Any) -> bytes:
    """Bytes stay bytes (images, audio); anything else becomes JSON. One tag byte says which."""
    if isinstance(value, bytes | bytearray | memoryview):
        return b"b" + bytes(value)
    return b"j" + json.dumps(value, separators=(",", ":")).encode()


def decode_value(data: bytes) -> Any:
    return data[1:] if data[:1] == b"b" else json.loads(data[1:])


class RedisCache:
    """A cache shared across processes: ``SET key value EX ttl`` (the SETEX of Redis >= 2.6.12,
    which redis-py 8 prefers) gives each key its TTL on the server.

    The last-good copy lives under ``{prefix}stale:{key}`` with its own, longer TTL (written in the
    same round trip). The caller owns ``redis`` (``async with Redis.from_url(url) as redis``);
    it must return bytes (the default, ``decode_responses=False``). A Redis outage degrades to
    misses and skipped stores, logged, rather than failing the API call the cache was meant to save.
    """

    def __init__(self, redis: Redis, *, prefix: str = "opusclip:cache:", ttl: float = DEFAULT_TTL,
                 stale_ttl: float | None = None,
                 encode: Callable[[Any], bytes] = encode_value,
                 decode: Callable[[bytes], Any] = decode_value) -> None:
        self.ttl = ttl
        self.prefix = prefix
        self._redis = redis
        self._stale_ttl = stale_ttl
        self._encode = encode
        self._decode = decode

    async def get(self, key: str) -> Any:
        return await self._read(self.prefix + key)

    async def get_stale(self, key: str) -> Any:
        return MISS if self._stale_ttl is None else await self._read(f"{self.prefix}stale:{key}")

    async def set(self, key: str, value: Any) -> None:
        data = self._encode(value)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self.prefix + key, data, ex=_whole_seconds(self.ttl))
                if self._stale_ttl is not None:
                    pipe.set(f"{self.prefix}stale:{key}", data, ex=_whole_seconds(self._stale_ttl))
                await pipe.execute()
        except RedisError as exc:
            logger.warning("cache store skipped, Redis failed: %r", exc)

    async def _read(self, name: str) -> Any:
        try:
            data = cast("bytes | None", await self._redis.get(name))  # decode_responses=False
        except RedisError as exc:
            logger.warning("cache read treated as a miss, Redis failed: %r", exc)
            return MISS
        return MISS if data is None else self._decode(data)


def _whole_seconds(seconds: float) -> int:
    """``EX`` takes whole seconds, at least 1."""
    return max(1, round(seconds))
