"""Measurements that become pandas DataFrames.

Every layer (database queries, HTTP calls, cache look-ups, pipeline stages) records what it did
into a :class:`Recorder`. A notebook then calls :meth:`Recorder.frame` and plots the result, so
the numbers on a chart are the numbers the code really measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

BASE_COLUMNS = ["kind", "name", "start", "end", "seconds", "ok", "error"]


@dataclass(frozen=True, slots=True)
class Event:
    """One measured piece of work. ``start`` is seconds since the recorder was created."""

    kind: str
    name: str
    start: float
    seconds: float
    ok: bool = True
    error: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Collects :class:`Event` records; cheap enough to leave on in production code.

    ``kind`` groups events of one sort ("query", "http", "cache", "stage", "pool"); ``name`` says
    which one (a query name, an endpoint, a stage); labels carry the rest (backend, rows, status).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._origin = clock()
        self._events: list[Event] = []

    def now(self) -> float:
        """Seconds since this recorder was created, on the recorder's clock."""
        return self._clock() - self._origin

    def add(
        self,
        kind: str,
        name: str,
        *,
        start: float | None = None,
        seconds: float = 0.0,
        ok: bool = True,
        error: str | None = None,
        **labels: Any,
    ) -> Event:
        """Record an event measured elsewhere (``start`` defaults to now minus ``seconds``)."""
        begin = self.now() - seconds if start is None else start
        event = Event(kind, name, begin, seconds, ok, error, labels)
        self._events.append(event)
        return event

    @contextmanager
    def measure(self, kind: str, name: str, **labels: Any) -> Iterator[dict[str, Any]]:
        """Time the ``with`` block; works around ``await`` too.

        Yields the labels dict so the block can add what it learns (``labels["rows"] = n``).
        An exception (cancellation included) is recorded with ``ok=False`` and re-raised.
        """
        start = self.now()
        try:
            yield labels
        except BaseException as exc:
            self.add(kind, name, start=start, seconds=self.now() - start, ok=False,
                     error=type(exc).__name__, **labels)
            raise
        self.add(kind, name, start=start, seconds=self.now() - start, **labels)

    def events(self, kind: str | None = None) -> list[Event]:
        return [e for e in self._events if kind is None or e.kind == kind]

    def frame(self, kind: str | None = None) -> pd.DataFrame:
        """All events (or one kind) as a DataFrame: base columns, then one column per label."""
        rows = [
            {"kind": e.kind, "name": e.name, "start": e.start, "end": e.start + e.seconds,
             "seconds": e.seconds, "ok": e.ok, "error": e.error, **e.labels}
            for e in self.events(kind)
        ]
        return pd.DataFrame(rows, columns=None if rows else BASE_COLUMNS)

    def clear(self) -> None:
        self._events.clear()

    def __len__(self) -> int:
        return len(self._events)


def percentiles(frame: pd.DataFrame, by: str | list[str], column: str = "seconds",
                quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)) -> pd.DataFrame:
    """p50/p95/p99 (in milliseconds) and counts of ``column`` grouped by ``by``."""
    grouped = frame.groupby(by)[column]
    table = grouped.quantile(list(quantiles)).unstack() * 1000
    table.columns = [f"p{round(q * 100)}_ms" for q in quantiles]
    table.insert(0, "count", grouped.size())
    return table.round(2)
