"""Redis pub/sub: a push feed for any database backend, across processes and machines.

Fire-and-forget like NOTIFY: a subscriber that is not connected when an update is published
never sees it (the live table starts from :func:`~.updates.snapshot` for that reason).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from opusclip_lib.monitoring.tasks import background
from opusclip_lib.monitoring.transport import Sink
from opusclip_lib.monitoring.updates import Update, encode

SUBSCRIBE_TIMEOUT_S = 5.0


class RedisPubSub:
    name = "redis"

    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel

    async def publish(self, update: Update) -> None:
        await self.redis.publish(self.channel, encode(update))

    @asynccontextmanager
    async def listen(self, sink: Sink) -> AsyncIterator[None]:
        async with self.redis.pubsub() as pubsub:  # its own connection, closed on exit
            await pubsub.subscribe(self.channel)
            # SUBSCRIBE is only sent; until Redis confirms it, a PUBLISH from another
            # connection could be processed first and be lost.
            confirmation = await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_S)
            if confirmation is None or confirmation["type"] != "subscribe":
                raise ConnectionError(f"Redis did not confirm SUBSCRIBE {self.channel} within "
                                      f"{SUBSCRIBE_TIMEOUT_S:g} s (got {confirmation!r})")
            async with background(self._read(pubsub, sink), name=f"redis feed {self.channel}"):
                yield

    @staticmethod
    async def _read(pubsub: PubSub, sink: Sink) -> None:
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is not None and message["type"] == "message":
                    sink.receive(message["data"])
        except Exception as exc:  # connection lost: tell the subscribers, don't die silently
            sink.fail(exc)
