"""Videos: one row per video, keyed by an 11-character id.

A YouTube video's key is its YouTube id. A video from a file or a web page keeps what the user
gave in ``source`` and gets a key derived from its content hash or URL (:func:`source_key`);
a file's ``content_sha256`` is unique, so the same file given twice is one video.

Functions take an executor: the ``Database`` (each call autocommits) or a ``Connection`` from
``db.transaction()`` (calls join that transaction).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opusclip_lib.db import repository, validate
from opusclip_lib.db.backend import Row
from opusclip_lib.db.connection import Connection, Executor
from opusclip_lib.db.errors import InvalidUrlError, InvalidYouTubeIdError
from opusclip_lib.db.models import Video
from opusclip_lib.db.repository import Method
from opusclip_lib.db.schema import NAME_MAX, STATUS_MAX, TITLE_MAX, URL_MAX
from opusclip_lib.db.validate import Column

WATCH_URL = "https://www.youtube.com/watch?v="
MEDIA_URL = re.compile(rf"{validate.HTTP_URL.pattern}|file:///\S*", re.ASCII)
"""A web page or media URL, or the ``file://`` URI of a local file."""
SHA256 = re.compile(r"[0-9a-f]{64}")


def source_key(digest: bytes) -> str:
    """An 11-character key from a hash (64 bits in URL-safe base64), shaped like a YouTube id so
    the rest of the workflow (folders, jobs, feeds) treats every video alike."""
    return base64.urlsafe_b64encode(digest[:8]).decode().rstrip("=")


def url_key(url: str) -> str:
    """The key of a web page's video: its URL is the idempotency key until it is downloaded."""
    return source_key(hashlib.sha256(url.encode()).digest())


def _watch_url_by_default(data: dict[str, list[Any]]) -> None:
    urls = data["url"]
    if None in urls:
        data["url"] = [url if url is not None else WATCH_URL + youtube_id
                       for url, youtube_id in zip(urls, data["youtube_id"], strict=True)]


VIDEOS = repository.Table(
    "videos",
    [
        Column("youtube_id", required=True, pattern=validate.YOUTUBE_ID,
               shape=validate.YOUTUBE_ID_SHAPE, error=InvalidYouTubeIdError),
        Column("url", max_len=URL_MAX, pattern=MEDIA_URL,
               shape=f"{validate.URL_SHAPE}, or a file:// URI", error=InvalidUrlError),
        # missing: the watch page of the id
        Column("title", max_len=TITLE_MAX),
        Column("channel", max_len=NAME_MAX),
        Column("duration_s", "number", low=0),
        Column("metadata", "json"),
        Column("status", default="new", max_len=STATUS_MAX),
        Column("source", max_len=URL_MAX),
        Column("content_sha256", pattern=SHA256, shape="64 lowercase hex digits"),
    ],
    key=("youtube_id",),
    fill=_watch_url_by_default,
)


async def insert_video(ex: Executor, youtube_id: str, **fields: Any) -> Video:
    """Insert one video; ``url`` defaults to its watch page. Raises ``UniqueViolationError`` if
    known."""
    row = await repository.insert_one(ex, VIDEOS, {"youtube_id": youtube_id, **fields})
    return Video.from_row(row)


async def get_video(ex: Executor, video_id: int) -> Video:
    """By primary key; raises ``NotFoundError``."""
    return Video.from_row(await repository.get_one(ex, VIDEOS, video_id))


async def find_video(ex: Executor, youtube_id: str) -> Video | None:
    """By YouTube id; ``None`` if unknown (a malformed id raises ``InvalidYouTubeIdError``)."""
    row = await repository.find_one(ex, VIDEOS, "youtube_id", validate.youtube_id(youtube_id))
    return Video.from_row(row) if row else None


async def videos_by_youtube_id(ex: Executor, youtube_ids: Sequence[str]) -> dict[str, Video]:
    """The stored videos among ``youtube_ids`` (checked ids), by YouTube id."""
    rows = await repository.fetch_in(ex, "SELECT * FROM videos WHERE youtube_id IN ({marks})",
                                     youtube_ids, name="find videos")
    return {row["youtube_id"]: Video.from_row(row) for row in rows}


async def stored_youtube_ids(ex: Executor) -> list[str]:
    """Every stored video's YouTube id, in order."""
    rows = await ex.fetch("SELECT youtube_id FROM videos ORDER BY youtube_id",
                          name="sync stored ids")
    return [row["youtube_id"] for row in rows]


async def lock_videos(tx: Connection, youtube_ids: Sequence[str],
                      columns: Sequence[str]) -> dict[str, Row]:
    """``columns`` of the stored videos among ``youtube_ids``, by YouTube id, locked for update
    until ``tx`` ends (SQLite has no row locks: its ``BEGIN IMMEDIATE`` already holds the write
    lock)."""
    selected = ", ".join(["youtube_id", *(VIDEOS.column(c) for c in columns)])
    lock = "" if tx.backend.name == "sqlite" else " FOR UPDATE"
    rows = await repository.fetch_in(
        tx, f"SELECT {selected} FROM videos WHERE youtube_id IN ({{marks}}) "
        f"ORDER BY youtube_id{lock}", youtube_ids, name="sync read videos")
    return {row["youtube_id"]: row for row in rows}


async def find_by_content(ex: Executor, content_sha256: str) -> Video | None:
    """The video of a file by its content hash; ``None`` if no file with it was added."""
    row = await repository.find_one(ex, VIDEOS, "content_sha256", content_sha256)
    return Video.from_row(row) if row else None


async def list_videos(ex: Executor, *, status: str | None = None, channel: str | None = None,
                      order_by: str = "id", limit: int = 100, offset: int = 0) -> list[Video]:
    rows = await repository.list_where(ex, VIDEOS, {"status": status, "channel": channel},
                                       order_by=order_by, limit=limit, offset=offset)
    return [Video.from_row(row) for row in rows]


async def count_videos(ex: Executor, *, status: str | None = None) -> int:
    return await repository.count_where(ex, VIDEOS, {"status": status})


async def update_video(ex: Executor, video_id: int, **changes: Any) -> Video:
    """Change some columns; raises ``NotFoundError``."""
    return Video.from_row(await repository.update_one(ex, VIDEOS, video_id, changes))


async def delete_video(ex: Executor, video_id: int) -> None:
    """Delete the video and (cascade) its clips and jobs; raises ``NotFoundError``."""
    await repository.delete_one(ex, VIDEOS, video_id)


async def insert_videos(ex: Executor, videos: Iterable[Mapping[str, Any]], *,
                        method: Method = "batch") -> int:
    """All or nothing. ``"batch"``: executemany; ``"bulk"``: COPY / multi-row INSERT."""
    return await repository.insert_many(ex, VIDEOS, videos, method=method)


async def upsert_videos(ex: Executor, videos: Iterable[Mapping[str, Any]], *,
                        update: Sequence[str] | None = None) -> int:
    """Insert new YouTube ids, overwrite the known ones (all or nothing): every writable column,
    or only the ``update`` ones (new ids still get the others' defaults)."""
    return await repository.upsert_many(ex, VIDEOS, videos, update=update)


async def update_videos(ex: Executor, changes: Iterable[Mapping[str, Any]], *,
                        key: str = "id") -> int:
    """Per-row changes, e.g. ``[{"id": 1, "status": "done"}, ...]`` or ``key="youtube_id"``."""
    return await repository.update_many(ex, VIDEOS, changes, key=key)
