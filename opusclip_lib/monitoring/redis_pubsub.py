"""Redis pub/sub: a push feed for any database backend, across processes and machines.

Fire-and-forget like NOTIFY: a subscriber that is not connected when an update is published
never sees it (the live table starts from :func:`~.updates.snapshot` for that reason). Delivery
is at most once: after a lost connection the listener reconnects and subscribes again, and what
was published in between is gone, so a board that must not miss a job also polls the database.

On a single server the feed uses classic pub/sub (``PUBLISH``/``SUBSCRIBE``). On a Redis Cluster
it uses sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``, Redis 7): a classic ``PUBLISH`` is copied to
every node over the cluster bus, so its cost grows with the cluster, while a sharded message
stays in the shard that owns the channel's hash slot (its primary and replicas). redis-py's
asyncio ``ClusterPubSub`` follows the channel to its new owner after a failover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from opusclip_lib.monitoring.transport import Sink
from opusclip_lib.monitoring.updates import Update, encode
from opusclip_lib.pipelines import background
from opusclip_lib.redis_client import AnyRedis, RedisTimeouts, RedisUnavailableError, translate
from opusclip_lib.redis_client._connect import is_outage

logger = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 5.0
POLL_S = 1.0  # one read waits at most this long, so a dead connection is noticed
RECONNECT_BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0)  # then 1 s between attempts


class RedisPubSub:
    name = "redis"

    def __init__(self, redis: AnyRedis, channel: str, *,
                 timeouts: RedisTimeouts = RedisTimeouts()) -> None:
        self.redis = redis
        self.channel = channel
        self.timeouts = timeouts
        self.sharded = isinstance(redis, RedisCluster)
        """Sharded pub/sub (``SPUBLISH``) on a cluster, classic (``PUBLISH``) on one server."""
        self.reconnects = 0
        """Times the listener lost its connection and subscribed again."""

    async def publish(self, update: Update) -> None:
        """Send ``update``; a typed :class:`~opusclip_lib.redis_client.RedisUnavailableError`
        within ``timeouts.command_s`` if Redis cannot take it."""
        payload = encode(update)
        try:
            async with asyncio.timeout(self.timeouts.command_s):
                if self.sharded:
                    await self.redis.spublish(self.channel, payload)
                else:
                    await self.redis.publish(self.channel, payload)
        except (RedisError, OSError, TimeoutError) as exc:
            raise translate(exc) from exc

    @asynccontextmanager
    async def listen(self, sink: Sink) -> AsyncIterator[None]:
        pubsub = self.redis.pubsub()  # its own connection(s), closed on exit
        try:
            await self._subscribe(pubsub)
            async with background(self._read(pubsub, sink), name=f"redis feed {self.channel}"):
                yield
        finally:
            await pubsub.aclose()

    async def _subscribe(self, pubsub: PubSub) -> None:
        """Subscribe and wait for Redis to confirm: until then, a PUBLISH from another
        connection could be processed first and be lost."""
        expected = "ssubscribe" if self.sharded else "subscribe"
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                if self.sharded:
                    await pubsub.ssubscribe(self.channel)
                else:
                    await pubsub.subscribe(self.channel)
                confirmation = await self._next(pubsub, timeout_s=None)
        except (RedisError, OSError, TimeoutError) as exc:
            raise translate(exc) from exc
        if confirmation is None or confirmation["type"] != expected:
            raise RedisUnavailableError(f"Redis did not confirm {expected.upper()} "
                                        f"{self.channel} (got {confirmation!r})")

    async def _next(self, pubsub: PubSub, *, timeout_s: float | None,
                    ignore_subscribe_messages: bool = False) -> dict[str, Any] | None:
        if self.sharded:
            return await pubsub.get_sharded_message(  # type: ignore[no-any-return]
                ignore_subscribe_messages=ignore_subscribe_messages,
                timeout=SUBSCRIBE_TIMEOUT_S if timeout_s is None else timeout_s)
        return await pubsub.get_message(  # type: ignore[no-any-return]
            ignore_subscribe_messages=ignore_subscribe_messages, timeout=timeout_s)

    async def _read(self, pubsub: PubSub, sink: Sink) -> None:
        """Hand each message to ``sink``; ride out a lost connection by polling again (redis-py
        reconnects and subscribes again; on a cluster it finds the channel's new owner); fail
        the sink only on an error that is not an outage."""
        failed_in_a_row = 0
        try:
            while True:
                try:
                    message = await self._next(pubsub, timeout_s=POLL_S,
                                               ignore_subscribe_messages=True)
                except (RedisError, OSError) as exc:
                    if not is_outage(exc):
                        raise
                    if failed_in_a_row == 0:
                        self.reconnects += 1
                        logger.warning("Redis feed %s lost its connection (%s: %s); "
                                       "reconnecting (updates published meanwhile are lost)",
                                       self.channel, type(exc).__name__, exc)
                    await asyncio.sleep(RECONNECT_BACKOFF_S[min(failed_in_a_row,
                                                                len(RECONNECT_BACKOFF_S) - 1)])
                    failed_in_a_row += 1
                    continue
                if message is not None and message["type"] in ("message", "smessage"):
                    if failed_in_a_row:
                        logger.warning("Redis feed %s receives again", self.channel)
                        failed_in_a_row = 0
                    sink.receive(message["data"])
        except Exception as exc:  # noqa: BLE001 - not an outage: tell the subscribers, don't die
            sink.fail(translate(exc) if isinstance(exc, RedisError) else exc)
