"""Polling ``job_events`` by id watermark: the feed for SQLite, which has no push channel.

Every committed state change already appends a ``job_events`` row, so the table *is* the feed
and :meth:`JobEventPoller.publish` has nothing to send. Latency is the time from that row's
``created_at`` (the commit, give or take a millisecond) to delivery: about half the interval.

The watermark is exact on SQLite, whose single writer commits ids in order. On PostgreSQL or
MySQL a transaction can commit a lower id after a higher one was read, and polling by watermark
would skip it: use LISTEN/NOTIFY or Redis there (``open_feed`` does, unless told otherwise).
Progress-only changes (heartbeats) add no event; they show with the next status change, and
``stage``/``progress`` are the job's values when the event is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opusclip_lib.db import Database, as_datetime, as_float, jobs, stop_if_cancelled
from opusclip_lib.monitoring.transport import Sink
from opusclip_lib.monitoring.updates import Update
from opusclip_lib.pipelines import background


class JobEventPoller:
    name = "polling"
    channel = None

    def __init__(self, db: Database, *, interval_s: float = 0.05, batch: int = 500) -> None:
        if interval_s <= 0:
            raise ValueError(f"the poll interval must be positive, got {interval_s}")
        self.db = db
        self.interval_s = interval_s
        self.batch = batch

    async def publish(self, update: Update) -> None:
        """Nothing to send: the job_events row the change committed is the message."""

    @asynccontextmanager
    async def listen(self, sink: Sink) -> AsyncIterator[None]:
        watermark = await jobs.last_event_id(self.db)
        async with background(self._poll(watermark, sink), name="job event poller"):
            yield

    async def _poll(self, watermark: int, sink: Sink) -> None:
        try:
            while True:
                rows = await jobs.events_after(self.db, watermark, limit=self.batch)
                stop_if_cancelled()
                for row in rows:
                    at = as_datetime(row["at"])
                    assert at is not None  # NOT NULL column
                    sink.deliver({**row, "at": at, "progress": as_float(row["progress"]),
                                  "published_at": at.timestamp()})
                if rows:
                    watermark = rows[-1]["event_id"]
                if len(rows) < self.batch:
                    await asyncio.sleep(self.interval_s)
        except Exception as exc:  # noqa: BLE001 - the boundary: subscribers hear of any failure
            sink.fail(exc)
