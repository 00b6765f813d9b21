"""PostgreSQL LISTEN/NOTIFY: a push feed with no server besides the database.

Publishing runs ``SELECT pg_notify(channel, payload)`` on a pooled connection *right after* the
workflow's commit (the ``on_change`` hook runs after it), not inside the workflow's transaction:
the hook never sees that transaction, and PostgreSQL delivers a NOTIFY only at COMMIT anyway, so
a subscriber can never see a change that is later rolled back either way; the price is one extra
round trip (well under a millisecond on loopback). Listening needs a connection of its own,
outside the pool, for as long as the feed is open: a pooled one would be handed to other tasks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from opusclip_lib.db import ConnectionLostError, Database
from opusclip_lib.monitoring.transport import Sink
from opusclip_lib.monitoring.updates import Update, encode

LISTENER_APPLICATION = "opusclip-feed"
MAX_CHANNEL_BYTES = 63  # longer LISTEN names are truncated by the server, pg_notify's are not


class PostgresNotify:
    name = "postgres"

    def __init__(self, db: Database, channel: str) -> None:
        if db.name != "postgresql":
            raise ValueError(f"LISTEN/NOTIFY needs PostgreSQL, not {db.name}")
        if not 0 < len(channel.encode()) <= MAX_CHANNEL_BYTES:
            raise ValueError(f"a PostgreSQL channel name has 1-{MAX_CHANNEL_BYTES} bytes: "
                             f"{channel!r}")
        self.db = db
        self.channel = channel

    async def publish(self, update: Update) -> None:
        await self.db.execute("SELECT pg_notify(?, ?)", (self.channel, encode(update)),
                              name="feed notify")

    @asynccontextmanager
    async def listen(self, sink: Sink) -> AsyncIterator[None]:
        url = self.db.url
        connection = await asyncpg.connect(
            host=url.host or None, port=url.port, user=url.user or None,
            password=url.password or None, database=url.database,
            server_settings={"application_name": LISTENER_APPLICATION})

        def on_notify(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            sink.receive(payload)

        def on_lost(_connection: Any) -> None:
            sink.fail(ConnectionLostError("the feed's LISTEN connection closed; updates stop here",
                                     backend="postgresql"))

        try:
            connection.add_termination_listener(on_lost)
            await connection.add_listener(self.channel, on_notify)
            yield
        finally:
            connection.remove_termination_listener(on_lost)
            await connection.close()  # ends the session, and with it the LISTEN
