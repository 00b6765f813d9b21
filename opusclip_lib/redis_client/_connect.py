"""One place that turns a Redis URL into a client: a single server or a Redis Cluster.

``redis://host:port/db`` (and ``rediss://``, ``unix://``) is one server.
``redis+cluster://host:port`` (and ``rediss+cluster://``) is a Redis Cluster reached through any
one of its nodes: the client asks that node for the cluster's map of slots and discovers the
others. Both get the explicit timeouts of :class:`RedisTimeouts` and at most one quick retry,
instead of redis-py's defaults (a 5 s socket timeout, and in redis-py 8 up to ten retries with
backoff), which made each cached call wait seconds for a hung Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from opusclip_lib.redis_client._errors import (
    NotAClusterError,
    RedisClusterDownError,
    RedisConfigurationError,
    RedisServiceError,
    RedisUnavailableError,
)
from opusclip_lib.redis_client._timeouts import RedisTimeouts

AnyRedis: TypeAlias = Redis | RedisCluster

#: ``redis+cluster://`` -> the plain scheme redis-py parses.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SINGLE_SCHEMES = frozenset({"redis", "rediss", "unix"})


def is_cluster_url(url: str) -> bool:
    return _scheme(url) in CLUSTER_SCHEMES


def redis_client(url: str, *, timeouts: RedisTimeouts = RedisTimeouts()) -> AnyRedis:
    """A client for ``url`` (nothing is connected yet); close it with ``aclose()``.

    Raises :class:`RedisConfigurationError` for a URL no server could make work. The message
    names the scheme, never the URL: it may hold a password.
    """
    scheme = _scheme(url)
    settings: dict[str, Any] = {  # redis-py's keyword arguments, for either client class
        "socket_connect_timeout": timeouts.connect_s, "socket_timeout": timeouts.socket_s,
        "retry": Retry(NoBackoff(), 1)}  # one reconnect for a pooled connection gone stale
    try:
        if scheme in SINGLE_SCHEMES:
            return Redis.from_url(url, **settings)
        if scheme in CLUSTER_SCHEMES:
            plain = CLUSTER_SCHEMES[scheme] + url[len(scheme):]
            if urlsplit(plain).path.strip("/") not in ("", "0"):
                raise RedisConfigurationError("a Redis Cluster has only database 0: drop the "
                                              "/<db> from the redis+cluster:// URL")
            return RedisCluster.from_url(plain, **settings)
    except ValueError as exc:  # a port or option redis-py cannot parse (its text may quote it)
        if isinstance(exc, RedisConfigurationError):
            raise
        raise RedisConfigurationError(f"a malformed {scheme}:// URL (check the host, port and "
                                      "options)") from None
    shown = f" {scheme!r}" if scheme.replace("+", "").isalnum() else ""
    raise RedisConfigurationError(
        f"unsupported Redis URL scheme{shown}: use redis://host:port/db for one server or "
        "redis+cluster://host:port for a Redis Cluster (rediss:// and rediss+cluster:// for TLS)")


@asynccontextmanager
async def open_redis(url: str, *,
                     timeouts: RedisTimeouts = RedisTimeouts()) -> AsyncIterator[AnyRedis]:
    """``async with open_redis(url) as client:`` -- a client for ``url``, closed on exit.

    Opening never waits for an unreachable Redis (the caches then degrade to misses), but a
    ``redis+cluster://`` URL whose node answers without cluster mode raises
    :class:`NotAClusterError` at once: that is a wrong URL, not an outage.
    """
    client = redis_client(url, timeouts=timeouts)
    try:
        if isinstance(client, RedisCluster):
            await _refuse_single_server(client, timeouts)
        yield client
    finally:
        await client.aclose()


async def check_redis(client: AnyRedis, *,
                      timeouts: RedisTimeouts = RedisTimeouts()) -> None:
    """Return if Redis answers and (for a cluster) reports ``cluster_state:ok``.

    Raises :class:`RedisUnavailableError` (down or hung), :class:`RedisClusterDownError`
    (``cluster_state:fail``) or :class:`NotAClusterError`, within ``timeouts.command_s``.
    """
    try:
        async with asyncio.timeout(timeouts.command_s):
            if isinstance(client, RedisCluster):
                info = await _cluster_info(client)
                if info.get("cluster_state") != "ok":
                    raise RedisClusterDownError(
                        f"the Redis Cluster reports cluster_state:{info.get('cluster_state')} "
                        f"({info.get('cluster_slots_ok')} of 16384 slots served)")
            else:
                await client.ping()
    except RedisServiceError:
        raise
    except (RedisError, OSError, TimeoutError) as exc:
        raise translate(exc) from exc


async def delete_matching(client: AnyRedis, pattern: str) -> int:
    """Delete every key matching ``pattern`` (``SCAN``, on every primary of a cluster) and return
    how many; :class:`RedisUnavailableError` if Redis cannot be reached. For tidying up a run's
    keys, not for hot paths."""
    try:
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        if keys:
            await client.delete(*keys)  # a cluster client splits it per slot
    except (RedisError, OSError) as exc:
        raise translate(exc) from exc
    return len(keys)


def translate(exc: BaseException) -> RedisServiceError:
    """The project's typed error for a redis-py (or socket) failure."""
    if isinstance(exc, RedisServiceError):
        return exc
    text = str(exc)
    if "Cluster mode is not enabled" in text:
        return NotAClusterError("the redis+cluster:// URL points at a Redis without cluster mode "
                                "(cluster_enabled:0): use redis://host:port/db for a single server")
    if isinstance(exc, ClusterDownError) or "CLUSTERDOWN" in text:
        return RedisClusterDownError(f"the Redis Cluster is down: {type(exc).__name__}: {text}")
    if not is_outage(exc):
        return RedisServiceError(f"Redis refused the command: {type(exc).__name__}: {text}")
    if isinstance(exc, TimeoutError):
        return RedisUnavailableError("Redis did not answer in time")
    return RedisUnavailableError(f"Redis is unavailable: {type(exc).__name__}: {text}")


async def _cluster_info(client: RedisCluster) -> dict[str, Any]:
    """``CLUSTER INFO`` from the first node that answers: a dead node says nothing about the
    others."""
    await client.initialize()
    failure: BaseException = RedisUnavailableError("the cluster has no known node")
    for node in client.get_nodes():
        try:
            return await client.cluster_info(target_nodes=node)
        except (RedisError, OSError) as exc:
            failure = exc
    raise failure


def is_outage(exc: BaseException) -> bool:
    """Down, hung, unreachable or without a slot owner, as opposed to a command Redis refused
    (``WRONGTYPE``...), which says nothing about its health."""
    return not isinstance(exc, ResponseError) or isinstance(exc, ClusterError)


async def _refuse_single_server(client: RedisCluster, timeouts: RedisTimeouts) -> None:
    """Raise :class:`NotAClusterError` if the seed node answers without cluster mode."""
    try:
        async with asyncio.timeout(timeouts.command_s):
            await client.initialize()
    except (RedisClusterException, ResponseError) as exc:
        if "Cluster mode is not enabled" in str(exc):
            raise translate(exc) from None
    except (RedisError, OSError, TimeoutError):
        pass  # unreachable: an outage, which the caches ride out; commands retry initialize


def _scheme(url: str) -> str:
    scheme, separator, _ = url.partition("://")
    if not separator:
        raise RedisConfigurationError("a Redis URL starts with a scheme, e.g. redis://host:port/0 "
                                      "or redis+cluster://host:port")
    return scheme.lower()
