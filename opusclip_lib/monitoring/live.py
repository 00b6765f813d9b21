"""A live status table for notebooks: latest state per job, counts by status over time, and a
display that redraws in place, throttled, while a batch runs.

::

    async with open_feed(db) as feed, watch(feed) as board:   # table + chart appear here
        await run_batch(db, on_change=feed.publish)
    board.table()                                              # final state, as a DataFrame
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager, nullcontext
from typing import Any

import pandas as pd
from IPython.display import HTML, DisplayHandle, Image
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from opusclip_lib.charts.monitoring import status_over_time
from opusclip_lib.monitoring.feed import Feed
from opusclip_lib.monitoring.updates import Update
from opusclip_lib.pipelines import background

TABLE_COLUMNS = ("video_id", "kind", "status", "stage", "progress", "at", "latency_s")
DRAW_TIME_SHARE = 5  # wait 5x a redraw's duration before the next: drawing takes <= 1/5


class LiveStatus:
    """Folds feed updates into the latest state per job; cheap enough to apply every update."""

    def __init__(self) -> None:
        self._origin = time.monotonic()
        self._jobs: dict[int, Update] = {}  # insertion order = least recently changed first
        self._counts: Counter[str] = Counter()
        self._history: list[dict[str, float]] = []
        self.version = 0
        """Bumped by every applied update: a display redraws only when it moved."""

    def apply(self, update: Mapping[str, Any]) -> None:
        job_id = update["job_id"]
        previous = self._jobs.pop(job_id, None)
        if previous is not None:
            self._counts[previous["status"]] -= 1
        self._jobs[job_id] = {**(previous or {}), **update}
        self._counts[update["status"]] += 1
        self._history.append({"seconds": time.monotonic() - self._origin, **self._counts})
        self.version += 1

    def apply_all(self, updates: Iterable[Mapping[str, Any]]) -> None:
        for update in updates:
            self.apply(update)

    def __len__(self) -> int:
        return len(self._jobs)

    def counts(self) -> dict[str, int]:
        """Jobs per status now, e.g. ``{"completed": 8, "rendering": 2}``."""
        return {status: n for status, n in self._counts.items() if n}

    def table(self, *, recent: int | None = None) -> pd.DataFrame:
        """One row per job (index ``job_id``): all of them by id, or the ``recent`` most
        recently changed, newest first."""
        jobs = list(self._jobs.items())
        if recent is not None:
            jobs = jobs[::-1][:recent]
        frame = pd.DataFrame([{column: job.get(column) for column in TABLE_COLUMNS}
                              for _, job in jobs],
                             index=pd.Index([job_id for job_id, _ in jobs], name="job_id"),
                             columns=list(TABLE_COLUMNS))
        return frame if recent is not None else frame.sort_index()

    def history(self) -> pd.DataFrame:
        """Counts by status after each update: ``seconds`` (since this board was made) and one
        column per status."""
        frame = pd.DataFrame(self._history)
        return frame.fillna(0) if not frame.empty else pd.DataFrame(columns=["seconds"])

    def chart(self, *, ax: Axes | None = None) -> Axes:
        return status_over_time(self.history(), ax=ax)


class LiveDisplay:
    """A board drawn in one notebook output (table + chart) and redrawn in place.

    :meth:`refresh` redraws only when the board changed, at most ``max_per_second`` times a
    second, and never more than a fifth of the time: drawing the chart blocks the event loop
    (0.1-0.3 s for matplotlib on a busy machine), and the batch being watched shares that loop.
    """

    def __init__(self, board: LiveStatus, *, max_per_second: float = 5.0, rows: int = 10) -> None:
        self.board = board
        self.min_interval_s = 1 / max_per_second
        self.rows = rows
        self.redraws = 0
        self._table = DisplayHandle()
        self._chart = DisplayHandle()
        # Not pyplot's figure: never auto-shown at the end of the cell, never leaked.
        self._figure = Figure(figsize=(9, 3.5), dpi=72)
        self._figure.subplots_adjust(left=0.07, right=0.82, bottom=0.15)  # legend on the right
        self._axes = self._figure.add_subplot()
        self._drawn_version = -1
        self._next_draw = float("-inf")

    def show(self) -> None:
        """Put the table and chart in the current cell's output."""
        table, figure = self._render()
        self._table.display(table)
        self._chart.display(figure)

    def refresh(self, *, force: bool = False) -> bool:
        """Redraw if the board changed and the throttle allows it (``force``: if it changed)."""
        started = time.monotonic()
        if self.board.version == self._drawn_version or (not force
                                                         and started < self._next_draw):
            return False
        table, figure = self._render()
        self._table.update(table)
        self._chart.update(figure)
        took = time.monotonic() - started
        self._next_draw = started + max(self.min_interval_s, took * DRAW_TIME_SHARE)
        self.redraws += 1
        return True

    def _render(self) -> tuple[HTML, Image]:
        board = self.board
        self._drawn_version = board.version
        counts = pd.DataFrame([board.counts()], index=["jobs"])
        recent = board.table(recent=self.rows)
        html = (f"{counts.to_html()}<p>{len(board)} jobs; most recently changed:</p>"
                f"{recent.to_html(float_format=lambda x: f'{x:.2f}')}")
        self._axes.clear()
        board.chart(ax=self._axes)
        # A PNG made here, not the Figure: the notebook's figure formatter exists only once
        # pyplot's inline backend has loaded, and this figure never goes through pyplot.
        png = io.BytesIO()
        self._figure.savefig(png, format="png")
        return HTML(html), Image(data=png.getvalue(), format="png")


@asynccontextmanager
async def watch(feed: Feed, board: LiveStatus | None = None, *, display: bool = True,
                max_redraws_per_second: float = 5.0,
                linger: float = 0.2) -> AsyncIterator[LiveStatus]:
    """Follow ``feed`` into ``board`` while the block runs, redrawing a :class:`LiveDisplay`.

    ``linger`` seconds after the block, updates still in flight (the last NOTIFY, the next
    poll) are taken in before the final redraw.
    """
    board = board if board is not None else LiveStatus()
    view = LiveDisplay(board, max_per_second=max_redraws_per_second) if display else None
    if view is not None:
        view.show()

    async def follow(updates: AsyncIterator[Update]) -> None:
        async for update in updates:
            board.apply(update)

    async def repaint(view: LiveDisplay) -> None:
        while True:
            await asyncio.sleep(view.min_interval_s)
            view.refresh()

    async with (feed.updates() as updates, background(follow(updates), name="live status"),
                background(repaint(view), name="live display") if view else nullcontext()):
        yield board
        await asyncio.sleep(linger)
    if view is not None:
        view.refresh(force=True)
