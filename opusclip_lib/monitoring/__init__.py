"""Real-time job monitoring: a live status feed and a live table for notebooks.

::

    async with open_feed(db, redis_url) as feed:        # transport picked for the backend
        async with watch(feed) as board:                # table + chart, redrawn in place
            await workflow.run(..., on_change=feed.publish)
    percentiles(feed.recorder.frame("feed"), "name")    # delivery latency per transport

Transports (``open_feed(..., transport=...)`` forces one):

* ``"postgres"`` -- LISTEN on a dedicated asyncpg connection, ``pg_notify`` right after commit.
* ``"redis"`` -- Redis pub/sub (``redis.asyncio``), for any backend, across machines: classic
  on one server, sharded (``SSUBSCRIBE``) on a Redis Cluster (``redis+cluster://`` URL).
* ``"polling"`` -- read ``job_events`` by id watermark every ``poll_interval_s`` (SQLite).

Each update is stamped when published and its delivery latency recorded (``kind="feed"``).
Leaving ``open_feed`` closes the listener connection, the subscription and every task.
"""

from typing import TYPE_CHECKING, Any

from opusclip_lib.monitoring.feed import Feed, Subscription, choose_transport, open_feed
from opusclip_lib.monitoring.updates import Update, job_update, snapshot

if TYPE_CHECKING:
    from opusclip_lib.monitoring.live import LiveDisplay, LiveStatus, watch

_NOTEBOOK_BOARD = frozenset({"LiveDisplay", "LiveStatus", "watch"})


def __getattr__(name: str) -> Any:
    """The notebook board (pandas, IPython, matplotlib) loads when first asked for, so the feed
    alone serves a process without Jupyter (``opusclip dashboard``)."""
    if name in _NOTEBOOK_BOARD:
        from opusclip_lib.monitoring import live

        return getattr(live, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Feed", "LiveDisplay", "LiveStatus", "Subscription", "Update", "choose_transport",
    "job_update", "open_feed", "snapshot", "watch",
]
