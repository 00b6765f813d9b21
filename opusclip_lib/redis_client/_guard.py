"""Skip Redis while it is down, so an outage costs one timeout, not one per call.

A small circuit breaker, hand-written because the database layer uses it too and must not
import the resilience layer: the first failure opens it for ``down_for_s`` seconds, during
which every call is skipped at once (a cache miss); then calls try Redis again, and the first
success closes it. Each operation is bounded by ``command_s`` with ``asyncio.timeout``, so the
bound holds whatever client the caller built. The outage is logged once when it starts and
once when it ends, not on every skipped call.

On a cluster the breaker is kept per node (``scope``, see :func:`node_of`): a dead primary
turns only its own slots into misses, and once its replica has taken over, the slots map to
the new primary, whose breaker is closed, so they recover as soon as the client has learned
the new map.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from redis.asyncio import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from opusclip_lib.redis_client._connect import AnyRedis, is_outage, translate
from opusclip_lib.redis_client._errors import RedisUnavailableError
from opusclip_lib.redis_client._timeouts import RedisTimeouts

logger = logging.getLogger(__name__)
T = TypeVar("T")


def node_of(client: AnyRedis, key: str) -> str | None:
    """``host:port`` of the cluster node serving ``key`` as the client knows it; ``None`` for a
    single server, or while the client has no map of the cluster yet."""
    if not isinstance(client, RedisCluster):
        return None
    try:
        node = client.get_node_from_key(key)
    except RedisClusterException:  # the slot has no known owner
        return None
    return None if node is None else str(node.name)


class RedisGuard:
    """``await guard.call(lambda: redis.get(key), what="cache read")``: the result, or a typed
    :class:`~opusclip_lib.redis_client.RedisServiceError`: at once while Redis (or the node in
    ``scope``) is known to be down, within ``timeouts.command_s`` when it fails now. ``clock``
    lets tests move time without sleeping."""

    def __init__(self, timeouts: RedisTimeouts = RedisTimeouts(), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeouts = timeouts
        self._clock = clock
        self._down_until: dict[Hashable, float] = {}
        self._down_since: dict[Hashable, float] = {}
        self.failures = 0
        """Operations that failed against Redis (timeouts included)."""
        self.skipped = 0
        """Operations not sent because Redis (or their node) was known to be down."""

    def is_down(self, scope: Hashable = None) -> bool:
        """Redis as a whole, or the node ``scope``, failed less than ``down_for_s`` ago."""
        now = self._clock()
        return (now < self._down_until.get(None, -1.0)
                or (scope is not None and now < self._down_until.get(scope, -1.0)))

    async def call(self, operation: Callable[[], Awaitable[T]], *, what: str,
                   scope: Hashable = None) -> T:
        if self.is_down(scope):
            self.skipped += 1
            raise RedisSkippedError(f"Redis failed less than {self.timeouts.down_for_s:g} s ago; "
                               "not waiting for it")
        try:
            async with asyncio.timeout(self.timeouts.command_s):
                result = await operation()
        except (RedisError, OSError, TimeoutError) as exc:
            if is_outage(exc):
                self._failed(exc, what, scope)
            raise translate(exc) from exc
        since = self._down_since.pop(scope, None)
        if since is not None:
            logger.warning("Redis%s is back after %.1f s; %s succeeded", _where(scope),
                           self._clock() - since, what)
        return result

    def _failed(self, exc: BaseException, what: str, scope: Hashable) -> None:
        self.failures += 1
        now = self._clock()
        self._down_until[scope] = now + self.timeouts.down_for_s
        if scope not in self._down_since:
            self._down_since[scope] = now
            logger.warning("Redis%s failed during %s (%s: %s); skipping it for %g s",
                           _where(scope), what, type(exc).__name__,
                           exc or f"no answer within {self.timeouts.command_s:g} s",
                           self.timeouts.down_for_s)


def _where(scope: Hashable) -> str:
    return "" if scope is None else f" node {scope}"


class RedisSkippedError(RedisUnavailableError):
    """Not sent: Redis failed less than ``down_for_s`` ago."""
