"""YouTube data sync: refresh the statistics and metadata of every stored video.

::

    async with connect(url) as db, YouTubeClient() as yt:
        report = await sync_videos(db, yt)           # first: fills every video
        again = await sync_videos(db, yt)            # nothing changed: 304s, no row written
    sync_quota(frame([report, again]))               # opusclip_lib.charts.monitoring

Conflict policy -- who wins when the stored row and YouTube disagree:

* **Upstream wins** for what YouTube owns: ``title``, ``channel``, ``duration_s`` and
  ``metadata["youtube"]`` (the item's etag, statistics, channel id, publish date). A local
  edit to one of these is overwritten by the next sync.
* **Local wins, always**, for the workflow's fields: ``status``, ``url``, clips, jobs, and every
  other ``metadata`` key. A sync never writes them (the upsert updates only the upstream
  columns; ``metadata`` is merged under a row lock, not replaced).
* **Deleted upstream** (id no longer returned by videos.list): the row, its clips and jobs are
  kept; ``status`` becomes ``'deleted_upstream'`` -- the one status a sync sets, once, as a
  notice to the workflow -- and ``metadata["youtube"]`` records ``deleted_at`` and
  ``status_before_deletion``. If the video comes back, the note is dropped and the previous
  status restored (unless the status was changed since).
* **Failed call**: its videos are reported as errors and left untouched, never marked deleted.

ETags, two kinds: each videos.list call's ETag is remembered by the ``YouTubeClient`` and sent
as ``If-None-Match``, so an unchanged chunk of 50 comes back 304 with no body (keep one client
across syncs). Each *item*'s etag is stored in ``metadata["youtube"]["etag"]``: when a chunk did
change, it tells which of its videos did, so only those rows are written. Quota: the client
counts a 304 at full price; :class:`SyncReport` shows that and, as ``saved_units``, the units
answered 304.
"""

from opusclip_lib.sync.policy import DELETED_UPSTREAM, UPSTREAM_COLUMNS, YOUTUBE_KEY, decide
from opusclip_lib.sync.report import SyncReport, frame
from opusclip_lib.sync.videos import sync_videos

__all__ = ["DELETED_UPSTREAM", "UPSTREAM_COLUMNS", "YOUTUBE_KEY", "SyncReport", "decide",
           "frame", "sync_videos"]
