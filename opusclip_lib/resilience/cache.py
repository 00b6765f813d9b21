"""Response caches with a TTL, plus a last-good copy that outlives it for stale fallbacks.

Two backends share one small interface (``get``, ``set``, ``get_stale``, all async): in memory
(cachetools) for one process, Redis when several processes or notebook kernels should share hits.
Neither knows about errors: the policy only ever stores successful results.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from types import GenericAlias
from typing import Any, Final, Protocol, cast

from cachetools import TTLCache
from pydantic import BaseModel, TypeAdapter

from opusclip_lib.redis_client import AnyRedis, RedisGuard, RedisServiceError, node_of

logger = logging.getLogger(__name__)

DEFAULT_TTL_S: Final = 600.0  # 10 minutes: inside the 5-30 minutes that suit these APIs


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
    """A per-process cache: ``ttl_s`` fresh, then kept ``stale_ttl_s`` more as last-good.

    One ``TTLCache`` holds both lives: each entry is ``(value, fresh until, stale until)`` and
    lives as long as the longer of the two. Two tables (one per life) cost two inserts, and two
    evictions once full, on every store: a third of the policy's CPU per call.
    Values are stored as they are, not copied: do not mutate what you get back. ``timer`` lets
    tests move time forward without sleeping.
    """

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, stale_ttl_s: float | None = None,
                 maxsize: int = 1024, timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._stale_ttl_s = stale_ttl_s
        self._timer = timer
        self._entries: TTLCache[str, tuple[Any, float, float]] = TTLCache(
            maxsize, max(ttl_s, stale_ttl_s or 0.0), timer)

    async def get(self, key: str) -> Any:
        try:  # one look-up; TTLCache.get would do two (``in``, then ``[]``)
            value, fresh_until, _ = self._entries[key]
        except KeyError:
            return MISS
        return value if self._timer() < fresh_until else MISS

    async def set(self, key: str, value: Any) -> None:
        now = self._timer()
        stale_until = -math.inf if self._stale_ttl_s is None else now + self._stale_ttl_s
        self._entries[key] = (value, now + self.ttl_s, stale_until)

    async def get_stale(self, key: str) -> Any:
        try:
            value, _, stale_until = self._entries[key]
        except KeyError:
            return MISS
        return value if self._timer() < stale_until else MISS


#: Stored models must come from this package: data in Redis never chooses which class is built.
_TRUSTED_PACKAGE: Final = "opusclip_lib"


def encode_value(value: Any) -> bytes:
    """One tag byte, then the value: ``b`` bytes as they are (images, audio), ``m`` a pydantic
    model and ``l`` a list of models of one class (the class's import path, a newline, then its
    JSON), ``j`` anything else as JSON.

    Raises ``TypeError`` or ``ValueError`` for what cannot be stored that way: a model outside
    ``opusclip_lib`` (it could not be read back), or one that would not read back equal (bytes
    pydantic writes as text, a validator that changes its own output when run again).
    """
    if isinstance(value, bytes | bytearray | memoryview):
        return b"b" + bytes(value)
    model = _model_tag(value)
    if model is None:
        return b"j" + json.dumps(value, separators=(",", ":")).encode()
    tag, cls = model
    path = _class_path(cls)
    _trusted_model(path)  # refuse now what a reader would refuse later
    payload = _adapter(_shape(tag, cls)).dump_json(value, by_alias=False, round_trip=True)
    if _rebuild(tag, cls, payload) != value:
        raise ValueError(f"{path} does not read back equal from its JSON")
    return tag + path.encode() + b"\n" + payload


def decode_value(data: bytes) -> Any:
    """The value ``encode_value`` stored; ``ValueError`` if it cannot be rebuilt safely."""
    tag, body = data[:1], data[1:]
    if tag == b"b":
        return body
    if tag == b"j":
        return json.loads(body)
    if tag not in (b"m", b"l"):
        raise ValueError(f"unknown cache value tag {tag!r}")
    path, _, payload = body.partition(b"\n")
    return _rebuild(tag, _trusted_model(path.decode()), payload)


def _rebuild(tag: bytes, cls: type[BaseModel], payload: bytes) -> Any:
    return _adapter(_shape(tag, cls)).validate_json(payload, by_alias=False, by_name=True)


def _model_tag(value: Any) -> tuple[bytes, type[BaseModel]] | None:
    """``(tag, class)`` for a model or a non-empty list of models of one class, else ``None``."""
    if isinstance(value, BaseModel):
        return b"m", type(value)
    if (isinstance(value, list) and value and isinstance(value[0], BaseModel)
            and all(type(item) is type(value[0]) for item in value)):
        return b"l", type(value[0])
    return None


def _shape(tag: bytes, cls: type[BaseModel]) -> Any:
    return GenericAlias(list, (cls,)) if tag == b"l" else cls  # list[cls], built at run time


@functools.cache
def _adapter(shape: Any) -> TypeAdapter[Any]:
    """One adapter per shape: building one compiles a schema, far dearer than a cache hit."""
    return TypeAdapter(shape)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _trusted_model(path: str) -> type[BaseModel]:
    """The pydantic model of ``opusclip_lib`` that ``path`` names, else ``ValueError``.

    Only modules already imported are searched, so a forged path cannot import anything, and the
    class must live where the path says, so a name re-exported into the package does not count.
    """
    module, _, qualname = path.partition(":")
    if module != _TRUSTED_PACKAGE and not module.startswith(_TRUSTED_PACKAGE + "."):
        raise ValueError(f"refusing to rebuild {path!r}: not a class of {_TRUSTED_PACKAGE}")
    found: Any = sys.modules.get(module)
    for name in qualname.split("."):
        found = getattr(found, name, None)
    if not (isinstance(found, type) and issubclass(found, BaseModel)
            and _class_path(found) == path):
        raise ValueError(f"refusing to rebuild {path!r}: not a pydantic model of "
                         f"{_TRUSTED_PACKAGE} in an imported module")
    return found


class RedisCache:
    """A cache shared across processes: ``SET key value EX ttl`` (the SETEX of Redis >= 2.6.12,
    which redis-py 8 prefers) gives each key its TTL on the server.

    The last-good copy lives under its own key with a longer TTL, written in the same round trip.
    Both keys carry the request key as a hash tag (``{prefix}{<key>}`` and
    ``{prefix}stale:{<key>}``), so on a Redis Cluster they live in one slot, on one node, and the
    pipeline that writes them is still one round trip. The caller owns ``redis``, a single server
    or a cluster (``async with open_redis(url) as redis``, which sets short timeouts); it must
    return bytes (the default, ``decode_responses=False``).

    A Redis outage degrades to misses and skipped stores, logged, rather than failing the API
    call the cache was meant to save: each operation waits at most ``guard.timeouts.command_s``,
    and once Redis has failed the next ``down_for_s`` seconds skip it without waiting. So does a
    value the default encoder cannot store (see :func:`encode_value`), or an entry it will not
    rebuild (a forged class path, a model whose fields have changed since).
    """

    def __init__(self, redis: AnyRedis, *, prefix: str = "opusclip:cache:",
                 ttl_s: float = DEFAULT_TTL_S, stale_ttl_s: float | None = None,
                 encode: Callable[[Any], bytes] = encode_value,
                 decode: Callable[[bytes], Any] = decode_value,
                 guard: RedisGuard | None = None) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix {prefix!r} must not contain braces: the cache puts each "
                             "key in a {hash tag} itself, and Redis hashes only the first one")
        self.ttl_s = ttl_s
        self.prefix = prefix
        self.guard = guard if guard is not None else RedisGuard()
        self._redis = redis
        self._stale_ttl_s = stale_ttl_s
        self._encode = encode
        self._decode = decode

    def data_key(self, key: str) -> str:
        """The Redis key holding ``key``'s fresh value."""
        return f"{self.prefix}{{{key}}}"

    def stale_key(self, key: str) -> str:
        """The Redis key holding ``key``'s last-good copy (same hash slot as the fresh one)."""
        return f"{self.prefix}stale:{{{key}}}"

    async def get(self, key: str) -> Any:
        return await self._read(self.data_key(key))

    async def get_stale(self, key: str) -> Any:
        return MISS if self._stale_ttl_s is None else await self._read(self.stale_key(key))

    async def set(self, key: str, value: Any) -> None:
        try:
            data = self._encode(value)
        except (TypeError, ValueError) as exc:
            logger.warning("cache store skipped, value cannot be encoded: %s", exc)
            return

        async def store() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self.data_key(key), data, ex=_whole_seconds(self.ttl_s))
                if self._stale_ttl_s is not None:
                    pipe.set(self.stale_key(key), data, ex=_whole_seconds(self._stale_ttl_s))
                await pipe.execute()

        try:
            await self.guard.call(store, what="cache store",
                                  scope=node_of(self._redis, self.data_key(key)))
        except RedisServiceError as exc:
            logger.debug("cache store skipped: %s", exc)  # the guard logged the outage once

    async def _read(self, name: str) -> Any:
        try:
            data = cast("bytes | None", await self.guard.call(
                lambda: self._redis.get(name), what="cache read", scope=node_of(self._redis, name)))
        except RedisServiceError as exc:
            logger.debug("cache read treated as a miss: %s", exc)
            return MISS
        if data is None:
            return MISS
        try:
            return self._decode(data)
        except ValueError as exc:  # forged or foreign entry, or a model whose schema has changed
            logger.warning("cache read treated as a miss, stored value unreadable: %s", exc)
            return MISS


def _whole_seconds(seconds: float) -> int:
    """``EX`` takes whole seconds, at least 1."""
    return max(1, round(seconds))
