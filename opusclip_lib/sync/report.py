"""What one sync did, for a notebook to print and chart."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads when a report becomes a frame, not with the sync
    import pandas as pd


@dataclass(frozen=True, slots=True)
class SyncReport:
    """Counts per outcome and the quota spent.

    ``quota_units`` is what the client counted: every answered call at full price, 304s
    included (see :mod:`opusclip_lib.api.youtube`). ``saved_units`` is the part of it answered
    304 Not Modified: what ETags save if Google does not bill a 304 (unconfirmed), and in any
    case calls whose body was neither sent nor parsed, and rows not rewritten.
    """

    checked: int
    added: int
    changed: int
    unchanged: int
    deleted: int
    restored: int
    errors: dict[str, str] = field(default_factory=dict)
    """YouTube id -> why it was not synced (its call failed, it is unknown upstream, ...)."""
    calls: int = 0
    not_modified_calls: int = 0
    quota_units: float = 0
    saved_units: float = 0
    seconds: float = 0.0
    label: str | None = None

    @property
    def written(self) -> int:
        """Rows the sync wrote."""
        return self.added + self.changed + self.deleted + self.restored

    def as_row(self) -> dict[str, Any]:
        return {**asdict(self), "errors": len(self.errors), "written": self.written}


def frame(reports: Iterable[SyncReport]) -> pd.DataFrame:
    """One row per sync (``errors`` as a count, plus ``written``), as
    ``charts.monitoring.sync_quota`` takes; unlabelled syncs are numbered."""
    import pandas as pd

    rows = [report.as_row() for report in reports]
    for number, row in enumerate(rows, start=1):
        row["label"] = row["label"] or f"sync {number}"
    return pd.DataFrame(rows)
