"""Who wins, field by field, when a stored video and YouTube disagree (pure functions).

See the package docstring for the policy in words; :func:`decide` is that policy as code, one
video at a time, so it can be read and tested without a database or a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from opusclip_lib.api.models.youtube import Video as YouTubeVideo
from opusclip_lib.db import Row, as_json

DELETED_UPSTREAM = "deleted_upstream"
YOUTUBE_KEY = "youtube"
"""The one ``videos.metadata`` key a sync owns; every other key is the workflow's."""
UPSTREAM_COLUMNS = ("title", "channel", "duration_s", "metadata")
"""Columns a sync writes (``metadata`` merged: only its ``youtube`` key changes)."""

Outcome = Literal["added", "changed", "unchanged", "deleted", "restored", "missing"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one video: ``upsert`` is a row of upstream columns for the batch upsert,
    ``status`` a ``{youtube_id, status, metadata}`` row for the batch status update."""

    outcome: Outcome
    upsert: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


def upstream_columns(item: YouTubeVideo) -> dict[str, Any]:
    """The columns YouTube owns, as YouTube has them now (parts it did not send are left out)."""
    columns: dict[str, Any] = {}
    if item.snippet is not None:
        columns.update(title=item.snippet.title, channel=item.snippet.channel_title)
    if item.content_details is not None:
        columns["duration_s"] = item.content_details.duration.total_seconds()
    return columns


def youtube_metadata(item: YouTubeVideo) -> dict[str, Any]:
    """``metadata["youtube"]``: the item's etag (what tells a changed video from an unchanged
    one), its statistics and the snippet fields that have no column."""
    block: dict[str, Any] = {"etag": item.etag}
    if item.statistics is not None:
        block["statistics"] = item.statistics.model_dump(exclude_none=True)
    if item.snippet is not None:
        block.update(channel_id=item.snippet.channel_id,
                     published_at=item.snippet.published_at.isoformat())
    return block


def local_metadata(stored: Row) -> dict[str, Any]:
    metadata = as_json(stored["metadata"])
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata is a JSON {type(metadata).__name__}, not an object: a sync "
                         "cannot add its key without overwriting it, so the video is left alone")
    return metadata


def decide(youtube_id: str, stored: Row | None, item: YouTubeVideo | None,
           now: datetime) -> Decision:
    """The policy for one video: ``stored`` is its row (``None``: not stored yet), ``item`` what
    videos.list returned for it (``None``: YouTube no longer has it). ``ValueError`` when the
    row's metadata is not a JSON object."""
    if stored is None:
        if item is None:
            return Decision("missing")
        return Decision("added", upsert={"youtube_id": youtube_id, **upstream_columns(item),
                                         "metadata": {YOUTUBE_KEY: youtube_metadata(item)}})
    metadata = local_metadata(stored)
    known = metadata.get(YOUTUBE_KEY) or {}
    deleted = "deleted_at" in known
    if item is None:
        if deleted:
            return Decision("unchanged")  # already noted; the status may have moved on since
        marked = {**metadata, YOUTUBE_KEY: {**known, "deleted_at": now.isoformat(),
                                            "status_before_deletion": stored["status"]}}
        return Decision("deleted", status={"youtube_id": youtube_id, "status": DELETED_UPSTREAM,
                                           "metadata": marked})
    columns = upstream_columns(item)
    if not deleted and known.get("etag") == item.etag and all(
            stored[name] == value for name, value in columns.items()):
        return Decision("unchanged")
    fresh = {**metadata, YOUTUBE_KEY: youtube_metadata(item)}  # drops any deletion note
    upsert = {"youtube_id": youtube_id, **columns, "metadata": fresh}
    if not deleted:
        return Decision("changed", upsert=upsert)
    status = (known.get("status_before_deletion") or "new"
              if stored["status"] == DELETED_UPSTREAM else stored["status"])
    return Decision("restored", upsert=upsert,
                    status={"youtube_id": youtube_id, "status": status, "metadata": fresh})
