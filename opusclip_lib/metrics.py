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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads when a frame is asked for, not with every layer that records
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


class _Columns:
    """The events of one kind, stored by column: a list per field, one per label name."""

    __slots__ = ("errors", "labels", "names", "oks", "seconds", "starts")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.starts: list[float] = []
        self.seconds: list[float] = []
        self.oks: list[bool] = []
        self.errors: list[str | None] = []
        self.labels: dict[str, list[Any]] = {}


#: Fills a label column for the events that did not carry that label.
_ABSENT: Any = object()


class Recorder:
    """Collects events; cheap enough to leave on in production code.

    ``kind`` groups events of one sort ("query", "http", "cache", "stage", "pool"); ``name`` says
    which one (a query name, an endpoint, a stage); labels carry the rest (backend, rows, status).

    Events are kept by column, as pandas keeps them, not as one object each: a recorder holding
    100,000 events then holds no objects the garbage collector has to walk. One object per event
    made every collection slower as the recorder grew, and at thousands of HTTP calls a second
    the collector took a fifth of the client's CPU (``opusclip bench api``).
    :meth:`events` and :meth:`frame` build the rows when asked.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._origin = clock()
        self._kinds: list[str] = []  # the kind of each event, in the order they were added
        self._tables: dict[str, _Columns] = {}

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
    ) -> None:
        """Record an event measured elsewhere (``start`` defaults to now minus ``seconds``)."""
        table = self._tables.get(kind)
        if table is None:
            table = self._tables[kind] = _Columns()
        rows = len(table.names)
        table.names.append(name)
        table.starts.append(self.now() - seconds if start is None else start)
        table.seconds.append(seconds)
        table.oks.append(ok)
        table.errors.append(error)
        columns = table.labels
        if labels.keys() == columns.keys():  # the usual case: the labels this kind always has
            for label, value in labels.items():
                columns[label].append(value)
        else:
            for label, column in columns.items():
                column.append(labels.pop(label, _ABSENT))
            for label, value in labels.items():  # labels this kind has not carried before
                columns[label] = [_ABSENT] * rows + [value]
        self._kinds.append(kind)

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
        """The events (or those of one kind) in the order they were added."""
        if kind is not None:
            table = self._tables.get(kind)
            return [] if table is None else [
                self._event(kind, table, row) for row in range(len(table.names))]
        rows = dict.fromkeys(self._tables, 0)
        events = []
        for each in self._kinds:
            events.append(self._event(each, self._tables[each], rows[each]))
            rows[each] += 1
        return events

    @staticmethod
    def _event(kind: str, table: _Columns, row: int) -> Event:
        labels = {label: column[row] for label, column in table.labels.items()
                  if column[row] is not _ABSENT}
        return Event(kind, table.names[row], table.starts[row], table.seconds[row],
                     table.oks[row], table.errors[row], labels)

    def frame(self, kind: str | None = None) -> pd.DataFrame:
        """All events (or one kind) as a DataFrame: base columns, then one column per label."""
        import pandas as pd

        rows = [
            {"kind": e.kind, "name": e.name, "start": e.start, "end": e.start + e.seconds,
             "seconds": e.seconds, "ok": e.ok, "error": e.error, **e.labels}
            for e in self.events(kind)
        ]
        return pd.DataFrame(rows, columns=None if rows else BASE_COLUMNS)

    def clear(self) -> None:
        self._kinds.clear()
        self._tables.clear()

    def __len__(self) -> int:
        return len(self._kinds)


def percentiles(frame: pd.DataFrame, by: str | list[str], column: str = "seconds",
                quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)) -> pd.DataFrame:
    """p50/p95/p99 (in milliseconds) and counts of ``column`` grouped by ``by``."""
    import pandas as pd  # loaded already: ``frame`` is a DataFrame

    grouped = frame.groupby(by)[column]
    table = grouped.quantile(pd.Index(quantiles)).unstack() * 1000
    table.columns = [f"p{round(q * 100)}_ms" for q in quantiles]
    table.insert(0, "count", grouped.size())
    return table.round(2)
