"""The live status feed: one interface over LISTEN/NOTIFY, Redis pub/sub and polling.

``open_feed`` picks the transport: PostgreSQL -> LISTEN/NOTIFY; else a Redis URL -> pub/sub
(one server or a cluster, see :mod:`~opusclip_lib.monitoring.redis_pubsub`);
else polling ``job_events`` (SQLite). ``transport=`` forces one. The :class:`Feed` stamps each
update when published, measures its latency when delivered (``kind="feed"`` events in the
recorder, named after the transport) and fans it out to every subscription.
"""

from __future__ import annotations

import time
from asyncio import Queue
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Literal, Self

from opusclip_lib.db import Database, DatabaseURL, connect, parse_url
from opusclip_lib.metrics import Recorder
from opusclip_lib.monitoring.pg_notify import PostgresNotify
from opusclip_lib.monitoring.polling import JobEventPoller
from opusclip_lib.monitoring.redis_pubsub import RedisPubSub
from opusclip_lib.monitoring.transport import Transport
from opusclip_lib.monitoring.updates import Update, decode
from opusclip_lib.redis_client import open_redis

TransportChoice = Literal["auto", "postgres", "redis", "polling"]
FEED_KIND = "feed"
DEFAULT_CHANNEL = "opusclip_jobs"


class _Closed:
    """Queued to end every subscription when the feed closes."""


_CLOSED = _Closed()
_Item = Update | _Closed | BaseException


class Subscription:
    """Updates delivered after it was created, oldest first (each subscription gets its own
    copies); ``async for`` ends when the feed closes, or raises the transport's error if the
    feed broke.

    Registered at creation (not at the first ``__anext__``), so an update published between
    ``feed.updates()`` and the first iteration is not lost.
    """

    def __init__(self, feed: Feed) -> None:
        self._feed = feed
        self._queue: Queue[_Item] = Queue()
        feed._queues.add(self._queue)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Update:
        item = await self._queue.get()
        if isinstance(item, dict):
            return item
        self._queue.put_nowait(item)  # stay ended (or broken) for a second ``async for``
        if isinstance(item, BaseException):
            raise item
        raise StopAsyncIteration

    def pending(self) -> int:
        """Updates delivered but not read yet."""
        return self._queue.qsize()

    def close(self) -> None:
        """Stop receiving (the feed stays open for other subscriptions)."""
        self._feed._queues.discard(self._queue)
        self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()


class Feed:
    """``await feed.publish(update)`` (the workflow's ``on_change`` hook) and
    ``async for update in feed.updates()``. Made by :func:`open_feed`."""

    def __init__(self, transport: Transport, *, recorder: Recorder) -> None:
        self._transport = transport
        self.recorder = recorder
        self._queues: set[Queue[_Item]] = set()
        self._open = True
        self._error: BaseException | None = None

    @property
    def transport(self) -> str:
        """``"postgres"``, ``"redis"`` or ``"polling"``."""
        return self._transport.name

    @property
    def channel(self) -> str | None:
        """The PostgreSQL or Redis channel updates travel on (``None`` when polling)."""
        return self._transport.channel

    async def publish(self, update: Mapping[str, Any]) -> None:
        """Send ``update`` to every subscriber, stamped with ``published_at`` (epoch seconds).

        Call it after the state change committed. With polling it sends nothing: the committed
        ``job_events`` row is what subscribers read.
        """
        if not self._open:
            raise RuntimeError("the feed is closed")
        await self._transport.publish({**update, "published_at": time.time()})

    def updates(self) -> Subscription:
        if self._error is not None:
            raise self._error
        if not self._open:
            raise RuntimeError("the feed is closed")
        return Subscription(self)

    # --- the Sink side: called by the transport ---------------------------------------------

    def deliver(self, update: Update) -> None:
        """Stamp the delivery latency, record it, hand a copy to each subscription."""
        now = time.time()
        latency = max(0.0, now - float(update.get("published_at", now)))
        update["latency_s"] = latency
        self.recorder.add(FEED_KIND, self.transport, seconds=latency,
                          job_id=update.get("job_id"), status=update.get("status"))
        for queue in self._queues:
            queue.put_nowait(dict(update))

    def receive(self, payload: str | bytes) -> None:
        try:
            update = decode(payload)
        except ValueError as exc:  # someone else's message on our channel: note it, go on
            self.recorder.add(FEED_KIND, self.transport, ok=False, error=type(exc).__name__)
            return
        self.deliver(update)

    def fail(self, error: BaseException) -> None:
        """Listening stopped: end every subscription with ``error`` (publishing goes on)."""
        self._error = error
        self._end_subscriptions(error)

    def close(self) -> None:
        self._open = False
        self._end_subscriptions(_CLOSED)

    def _end_subscriptions(self, item: _Closed | BaseException) -> None:
        for queue in self._queues:
            queue.put_nowait(item)
        self._queues.clear()


def choose_transport(backend: str, redis_url: str | None,
                     forced: TransportChoice = "auto") -> Literal["postgres", "redis", "polling"]:
    """PostgreSQL -> LISTEN/NOTIFY; a Redis URL -> pub/sub; else polling (or what is forced)."""
    if forced == "postgres" and backend != "postgresql":
        raise ValueError(f"transport='postgres' needs a PostgreSQL database, not {backend}")
    if forced == "redis" and not redis_url:
        raise ValueError("transport='redis' needs redis_url")
    if forced != "auto":
        return forced
    if backend == "postgresql":
        return "postgres"
    return "redis" if redis_url else "polling"


@asynccontextmanager
async def open_feed(database_or_url: Database | DatabaseURL | str, redis_url: str | None = None,
                    *, transport: TransportChoice = "auto", channel: str | None = None,
                    poll_interval_s: float = 0.05,
                    recorder: Recorder | None = None) -> AsyncIterator[Feed]:
    """``async with open_feed(db_or_url, redis_url) as feed:`` listening from entry to exit.

    A URL opens (and closes) a small pool of its own. ``channel`` defaults to
    ``opusclip_jobs`` (plus ``_<schema>`` on a PostgreSQL schema, so schemas never cross-talk).
    Latencies go to ``recorder``, else the database's recorder, else a new one
    (``feed.recorder``). On exit the listener connection, subscription and tasks are released
    and every subscription's ``async for`` ends.
    """
    db: Database | None = None
    if isinstance(database_or_url, Database):
        db, url = database_or_url, database_or_url.url
    elif isinstance(database_or_url, DatabaseURL):
        url = database_or_url
    else:
        url = parse_url(database_or_url)
    chosen = choose_transport(url.backend, redis_url, transport)
    async with AsyncExitStack() as stack:
        if db is None and chosen != "redis":
            db = await stack.enter_async_context(connect(url, min_size=1, max_size=2))
        pipe: Transport
        if chosen == "redis":
            assert redis_url is not None
            client = await stack.enter_async_context(open_redis(redis_url))
            pipe = RedisPubSub(client, channel or DEFAULT_CHANNEL)
        elif chosen == "postgres":
            assert db is not None
            schema = url.options.get("schema")
            pipe = PostgresNotify(db, channel or DEFAULT_CHANNEL + (f"_{schema}" if schema else ""))
        else:
            assert db is not None
            pipe = JobEventPoller(db, interval_s=poll_interval_s)
        if recorder is None:  # not `recorder or ...`: an empty Recorder is falsy (len 0)
            recorder = db.recorder if db else Recorder()
        feed = Feed(pipe, recorder=recorder)
        stack.callback(feed.close)  # pushed first, so it runs last: after listening stopped
        await stack.enter_async_context(pipe.listen(feed))
        yield feed
