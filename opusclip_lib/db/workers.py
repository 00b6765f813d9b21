"""Worker processes' signs of life, and the queue figures ``opusclip status`` shows.

A job's lease says which worker holds it; an idle worker holds none, so liveness needs its own
row: each worker process upserts ``seen_at`` while it runs and deletes its row when it stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opusclip_lib.db import validate
from opusclip_lib.db.connection import Executor
from opusclip_lib.db.models import as_datetime
from opusclip_lib.db.schema import NAME_MAX
from opusclip_lib.db.validate import Column

_NAME = Column("name", required=True, max_len=NAME_MAX)
_NAME.label = "workers.name"


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """The queue as the database sees it, ages measured on the database's clock."""

    pending: int
    running: int
    oldest_pending_age_s: float | None
    workers_alive: int


async def seen(ex: Executor, name: str, *, broker: str | None = None) -> None:
    """``name`` is alive now (insert or refresh its row)."""
    [worker] = _NAME.prepare([name])
    sql = ex.backend.upsert_sql("workers", ("name", "broker"), ("name",), ("broker",),
                                touch=f"seen_at = {ex.backend.now}")
    await ex.execute(sql, (worker, broker), name="worker seen")


async def gone(ex: Executor, name: str) -> None:
    """``name`` stopped cleanly."""
    await ex.execute("DELETE FROM workers WHERE name = ?", (name,), name="worker gone")


async def summary(ex: Executor, *, alive_within_s: float) -> QueueSummary:
    """Pending and running jobs, the oldest due pending job's age, and the workers seen within
    ``alive_within_s``."""
    backend = ex.backend
    within = validate.seconds(alive_within_s, name="alive_within_s")
    row = await ex.fetchrow(
        f"SELECT {backend.now} AS now, "
        "(SELECT count(*) FROM processing_jobs WHERE status = 'pending') AS pending, "
        "(SELECT count(*) FROM processing_jobs WHERE status IN "
        "('downloading', 'transcribing', 'analyzing', 'rendering')) AS running, "
        "(SELECT min(created_at) FROM processing_jobs WHERE status = 'pending') AS oldest, "
        f"(SELECT count(*) FROM workers WHERE seen_at >= {backend.now_plus()}) AS alive",
        (-within,), name="queue summary")
    assert row is not None
    now, oldest = as_datetime(row["now"]), as_datetime(row["oldest"])
    return QueueSummary(int(row["pending"]), int(row["running"]), _age_s(now, oldest),
                        int(row["alive"]))


def _age_s(now: datetime | None, then: datetime | None) -> float | None:
    if now is None or then is None:
        return None
    return max((now - then).total_seconds(), 0.0)
