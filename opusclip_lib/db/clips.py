"""Clips: the short segments cut from a video, ranked by predicted virality."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opusclip_lib.db import repository, validate
from opusclip_lib.db.connection import Executor
from opusclip_lib.db.errors import ValidationError
from opusclip_lib.db.models import Clip
from opusclip_lib.db.repository import Method
from opusclip_lib.db.schema import HOOK_MAX, PATH_MAX, STATUS_MAX, TITLE_MAX
from opusclip_lib.db.validate import Column


def _ends_after_start(data: dict[str, list[Any]]) -> None:
    if "start_s" not in data or "end_s" not in data:
        return
    for index, (start, end) in enumerate(zip(data["start_s"], data["end_s"], strict=True)):
        if start is not None and end is not None and end <= start:
            raise ValidationError(f"clip must end after it starts: start_s={start}, "
                                  f"end_s={end} (row {index})")


CLIPS = repository.Table(
    "clips",
    [
        Column("video_id", "integer", required=True),
        Column("ranking", "integer", default=0, low=-validate.INT32_MAX - 1,
               high=validate.INT32_MAX),
        Column("start_s", "number", required=True, low=0),
        Column("end_s", "number", required=True, low=0),
        Column("title", max_len=TITLE_MAX),
        Column("hook", max_len=HOOK_MAX),
        Column("virality_score", "number", low=0, high=100),
        Column("transcript"),
        Column("clip_path", max_len=PATH_MAX),
        Column("thumbnail_path", max_len=PATH_MAX),
        Column("voiceover_path", max_len=PATH_MAX),
        Column("status", default="pending", max_len=STATUS_MAX),
    ],
    key=("video_id", "start_s", "end_s"),
    relations=[_ends_after_start],
)


async def insert_clip(ex: Executor, video_id: int, start_s: float, end_s: float,
                      **fields: Any) -> Clip:
    """Insert one clip; ``ForeignKeyViolationError`` if the video does not exist."""
    values = {"video_id": video_id, "start_s": start_s, "end_s": end_s, **fields}
    return Clip.from_row(await repository.insert_one(ex, CLIPS, values))


async def get_clip(ex: Executor, clip_id: int) -> Clip:
    return Clip.from_row(await repository.get_one(ex, CLIPS, clip_id))


async def list_clips(ex: Executor, video_id: int | None = None, *, status: str | None = None,
                     order_by: str = "ranking", limit: int = 100, offset: int = 0) -> list[Clip]:
    rows = await repository.list_where(ex, CLIPS, {"video_id": video_id, "status": status},
                                       order_by=order_by, limit=limit, offset=offset)
    return [Clip.from_row(row) for row in rows]


async def count_clips(ex: Executor, video_id: int | None = None) -> int:
    return await repository.count_where(ex, CLIPS, {"video_id": video_id})


async def update_clip(ex: Executor, clip_id: int, **changes: Any) -> Clip:
    return Clip.from_row(await repository.update_one(ex, CLIPS, clip_id, changes))


async def delete_clip(ex: Executor, clip_id: int) -> None:
    await repository.delete_one(ex, CLIPS, clip_id)


async def insert_clips(ex: Executor, clips: Iterable[Mapping[str, Any]], *,
                       method: Method = "batch") -> int:
    return await repository.insert_many(ex, CLIPS, clips, method=method)


async def upsert_clips(ex: Executor, clips: Iterable[Mapping[str, Any]]) -> int:
    """Keyed by (video_id, start_s, end_s): re-running an analysis updates, never duplicates."""
    return await repository.upsert_many(ex, CLIPS, clips)


async def update_clips(ex: Executor, changes: Iterable[Mapping[str, Any]]) -> int:
    return await repository.update_many(ex, CLIPS, changes)
