"""Each job's time in each status, read back from ``job_events``: a timeline that outlives crashes.

The recorder's ``kind="stage"`` events are finer (one per stage) but live in one process; the
job table's events are coarser (one per status) and durable, so a video killed mid-render and
resumed by another worker shows both attempts, the gap the reaper waited out, and who did what.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import TYPE_CHECKING

from opusclip_lib.db import Executor, as_datetime, jobs
from opusclip_lib.workflow.config import KIND

if TYPE_CHECKING:  # pandas loads on the first timeline, not with the workflow
    import pandas as pd

COLUMNS = ["kind", "name", "start", "end", "seconds", "ok", "error", "video", "job", "worker"]


async def status_timeline(ex: Executor, job_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """One row per (job, status) interval, times in seconds since the earliest event shown.

    Columns as :meth:`opusclip_lib.metrics.Recorder.frame` (``kind="status"``, ``name`` the
    status) plus ``video``, ``job`` and ``worker``, ready for
    :func:`opusclip_lib.charts.pipeline.stage_gantt`. A status a job is still in has no end yet
    and is left out; so are the instants of finishing.
    """
    import pandas as pd

    rows = await jobs.status_history(ex, KIND)
    wanted = None if job_ids is None else set(job_ids)
    events = [row | {"at": as_datetime(row["created_at"])} for row in rows
              if wanted is None or row["job_id"] in wanted]
    if not events:
        return pd.DataFrame(columns=COLUMNS)
    origin = min(event["at"] for event in events)
    intervals = []
    for event, following in pairwise(events):
        if following["job_id"] != event["job_id"]:
            continue
        start = (event["at"] - origin).total_seconds()
        end = (following["at"] - origin).total_seconds()
        failed = following["to_status"] == "failed"
        intervals.append({"kind": "status", "name": event["to_status"], "start": start,
                          "end": end, "seconds": end - start, "ok": not failed,
                          "error": following["message"] if failed else None,
                          "video": event["youtube_id"], "job": event["job_id"],
                          "worker": event["worker"]})
    return pd.DataFrame(intervals, columns=COLUMNS)
