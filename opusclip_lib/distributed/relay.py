"""Publishes the outbox's unsent wake-ups to the broker (at least once).

Each round locks a batch of unsent rows (``SKIP LOCKED``: relays in several workers share the
work instead of repeating it), publishes them, and marks them sent in the same transaction. A
broker that fails mid-batch rolls the marks back: those rows go out again on the next round,
some perhaps twice, which costs a worker one claim that finds nothing.
"""

from __future__ import annotations

import logging

from taskiq import AsyncBroker

from opusclip_lib.db import Database, outbox
from opusclip_lib.distributed.brokers import BrokerSettings, Wakeup, publish

logger = logging.getLogger(__name__)

BATCH = 100


async def relay_once(db: Database, broker: AsyncBroker, settings: BrokerSettings, *,
                     batch: int = BATCH) -> int:
    """Publish every unsent wake-up, ``batch`` per transaction; returns how many were sent.

    :class:`~opusclip_lib.distributed.errors.BrokerUnavailableError` leaves the unsent rows
    (including the failed batch) in the outbox.
    """
    sent = 0
    while True:
        async with db.transaction() as tx:
            wakeups = await outbox.take_unsent(tx, limit=batch)
            for row in wakeups:
                await publish(broker, settings, Wakeup(row.job_id, row.traceparent))
            await outbox.mark_sent(tx, [row.id for row in wakeups])
        sent += len(wakeups)
        if len(wakeups) < batch:
            return sent
