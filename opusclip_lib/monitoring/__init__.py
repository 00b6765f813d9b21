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

from opusclip_lib.monitoring.feed import Feed, Subscription, choose_transport, open_feed
from opusclip_lib.monitoring.live import LiveDisplay, LiveStatus, watch
from opusclip_lib.monitoring.updates import Update, job_update, snapshot

__all__ = [
    "Feed", "LiveDisplay", "LiveStatus", "Subscription", "Update", "choose_transport",
    "job_update", "open_feed", "snapshot", "watch",
]
