"""The server side of the live board: one database listener for all browsers.

:class:`LiveBoard` follows the job feed (LISTEN/NOTIFY on PostgreSQL, Redis pub/sub when given a
Redis URL, else polling ``job_events``) and hands each update to every connected browser at
once. A push feed carries only what publishers send (the engine's ``on_change``), so by default
the board also polls ``job_events``, which every committed status change writes whoever made
it; an update heard on both (same job, status and time: the event is stamped with the job
row's ``updated_at``) is sent once, by whichever came first. After a burst of updates, and
every ``refresh_s`` in any case, it reads a fresh :func:`~.board.snapshot` and sends that too,
so counts, ages and stuck-job alerts move even when nothing is published, and a message a
transport dropped is corrected by the next snapshot. A lost feed (a database restart) is
opened again with backoff; browsers keep the snapshots.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from prometheus_client import Counter, Gauge

from opusclip_lib.dashboard.board import DEFAULTS, BoardSettings, snapshot
from opusclip_lib.db import JOB_STATUSES, Database, stop_if_cancelled
from opusclip_lib.monitoring.feed import TransportChoice, choose_transport, open_feed
from opusclip_lib.monitoring.updates import encode
from opusclip_lib.observability.metrics_export import Metrics

logger = logging.getLogger(__name__)

MAX_PENDING = 1000  # messages queued for one slow browser before it is resynced instead
REOPEN_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
SEEN_KEYS = 10_000  # updates remembered to drop the second copy of one heard twice


class Browser:
    """One connected browser's outbox. ``None`` in it means "you fell behind: resync"."""

    def __init__(self) -> None:
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=MAX_PENDING)

    def offer(self, message: str) -> None:
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:  # drop the backlog: one snapshot replaces all of it
            while not self.outbox.empty():
                self.outbox.get_nowait()
            self.outbox.put_nowait(None)


class LiveBoard:
    """Feed in, snapshots and updates out to every :class:`Browser`; gauges for ``/metrics``."""

    def __init__(self, db: Database, metrics: Metrics, *, redis_url: str | None = None,
                 transport: TransportChoice = "auto", poll_interval_s: float = 0.05,
                 refresh_s: float = 2.0, burst_s: float = 0.1, min_gap_s: float = 1.0,
                 follow_events: bool = True, settings: BoardSettings = DEFAULTS) -> None:
        self.db = db
        self.metrics = metrics
        self.redis_url = redis_url
        push = choose_transport(db.name, redis_url, transport)
        self.sources: tuple[TransportChoice, ...] = (
            (push, "polling") if follow_events and push != "polling" else (push,))
        """The feeds followed: the push transport, and ``job_events`` polling unless that is
        the transport already or ``follow_events`` is off."""
        self.poll_interval_s = poll_interval_s
        self.refresh_s = refresh_s
        self.burst_s = burst_s
        self.min_gap_s = min_gap_s
        self.settings = settings
        self._open: set[str] = set()
        self._seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self.latest: dict[str, Any] | None = None
        self.browsers: set[Browser] = set()
        self._changed = asyncio.Event()
        self.listening = asyncio.Event()
        """Set once every feed is open (for the first time): updates published from then on
        reach the browsers."""
        registry = metrics.registry
        self.clients_gauge = Gauge("opusclip_dashboard_clients", "Browsers connected",
                                   registry=registry)
        self.updates_counter = Counter("opusclip_dashboard_updates",
                                       "Job updates sent on to the browsers", registry=registry)
        self.stuck_gauge = Gauge("opusclip_stuck_jobs",
                                 "Running jobs with no live lease (no recent heartbeat)",
                                 registry=registry)

    # --- browsers ------------------------------------------------------------------------------

    def join(self) -> Browser:
        browser = Browser()
        self.browsers.add(browser)
        self.clients_gauge.set(len(self.browsers))
        return browser

    def leave(self, browser: Browser) -> None:
        self.browsers.discard(browser)
        self.clients_gauge.set(len(self.browsers))

    @property
    def transport(self) -> str | None:
        """The feeds open now (``"postgres+polling"``), ``None`` while none is."""
        return "+".join(s for s in self.sources if s in self._open) or None

    def board_message(self) -> str:
        return encode({"type": "board", "transport": self.transport, "board": self.latest})

    def _broadcast(self, message: str) -> None:
        for browser in self.browsers:
            browser.offer(message)

    # --- the database side ---------------------------------------------------------------------

    async def refresh(self) -> dict[str, Any]:
        """Read a fresh snapshot, keep it for new browsers, and set the gauges from it."""
        board = await snapshot(self.db, self.settings)
        self.latest = board
        for status in JOB_STATUSES:
            self.metrics.queue_depth.labels(status).set(board["counts"].get(status, 0))
        oldest = board["oldest_pending"]
        self.metrics.oldest_job_age.set(oldest["age_s"] if oldest else 0.0)
        self.stuck_gauge.set(len(board["stuck"]))
        return board

    def _first_time(self, update: dict[str, Any]) -> bool:
        """False for the second copy of an update heard on two feeds."""
        if update.get("at") is None:
            return True
        key = (update.get("job_id"), update.get("status"), update["at"])
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_KEYS:
            self._seen.popitem(last=False)
        return True

    async def follow_feed(self, source: TransportChoice) -> None:
        """Send each update on as it arrives; reopen the feed with backoff when it breaks."""
        failures = 0
        while True:
            try:
                async with open_feed(self.db, self.redis_url, transport=source,
                                     poll_interval_s=self.poll_interval_s) as feed:
                    self._open.add(source)
                    if self._open >= set(self.sources):
                        self.listening.set()
                    self._changed.set()  # tell the browsers which feeds they are on
                    async for update in feed.updates():
                        failures = 0
                        if self._first_time(update):
                            self._broadcast(encode({"type": "update", "job": update}))
                            self.updates_counter.inc()
                            self._changed.set()
            except Exception:  # the listener's connection broke: reopen, browsers keep going
                logger.exception("dashboard feed %s lost; reopening", source)
            self._open.discard(source)
            await asyncio.sleep(REOPEN_BACKOFF_S[min(failures, len(REOPEN_BACKOFF_S) - 1)])
            failures += 1

    async def keep_fresh(self) -> None:
        """A snapshot after each burst of updates (``burst_s`` after its first, and no sooner
        than ``min_gap_s`` after the previous snapshot: drawing one costs the browser more
        than an update), and one every ``refresh_s`` regardless."""
        loop = asyncio.get_running_loop()
        last = float("-inf")
        while True:
            try:
                async with asyncio.timeout(self.refresh_s):
                    await self._changed.wait()
                await asyncio.sleep(max(self.burst_s, last + self.min_gap_s - loop.time()))
            except TimeoutError:
                pass
            self._changed.clear()
            try:
                await self.refresh()
                stop_if_cancelled()
            except Exception:  # a database hiccup: the next round tries again
                logger.exception("dashboard snapshot failed")
                continue
            finally:
                last = loop.time()
            self._broadcast(self.board_message())
