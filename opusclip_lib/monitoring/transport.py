"""What a feed transport is: a way to send an update and a way to hear everyone's updates."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from opusclip_lib.monitoring.updates import Update


class Sink(Protocol):
    """Where a transport hands what it hears (the :class:`~.feed.Feed`)."""

    def deliver(self, update: Update) -> None:
        """An update already decoded (and stamped with ``published_at``)."""

    def receive(self, payload: str | bytes) -> None:
        """An encoded update as it came off the wire."""

    def fail(self, error: BaseException) -> None:
        """The transport can no longer hear updates; subscribers should learn why."""


class Transport(Protocol):
    @property
    def name(self) -> str:
        """``"postgres"``, ``"redis"`` or ``"polling"``."""

    @property
    def channel(self) -> str | None:
        """The PostgreSQL or Redis channel (``None`` for polling)."""

    async def publish(self, update: Update) -> None:
        """Send one stamped update to every subscriber, in this process or another."""

    def listen(self, sink: Sink) -> AbstractAsyncContextManager[None]:
        """Hear updates into ``sink`` until the block exits, then release every connection,
        subscription and task it took."""
