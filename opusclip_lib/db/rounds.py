"""The loop behind every background poller of the database: a round, then a pause, forever.

Heartbeats, worker liveness, metrics sampling and the dispatcher's sweep all share it, so each
gets the two details a hand-written loop forgets: a round that fails on a passing database
outage is logged and retried at the next round instead of killing the poller, and a
cancellation kept by finished database work (see :func:`stop_if_cancelled`) ends the loop
instead of leaving it to poll on with its cancellation spent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

from opusclip_lib.db.connection import stop_if_cancelled

logger = logging.getLogger(__name__)


async def every(interval_s: float, round_: Callable[[], Awaitable[object]], *,
                skip: type[Exception] | tuple[type[Exception], ...] = (),
                skipped: str = "round skipped", pause_first: bool = False) -> NoReturn:
    """Await ``round_()`` every ``interval_s`` seconds until cancelled.

    An error of a ``skip`` type is logged as ``skipped`` and the next round tries again; any
    other error ends the loop. ``pause_first``: pause before the first round too.
    """
    if pause_first:
        await asyncio.sleep(interval_s)
    while True:
        try:
            await round_()
        except skip as exc:
            logger.warning("%s: %r", skipped, exc)
        stop_if_cancelled()
        await asyncio.sleep(interval_s)
