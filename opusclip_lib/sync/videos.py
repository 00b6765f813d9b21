"""``sync_videos``: refresh every stored video from ``videos.list``, 50 ids a call.

No transaction is held while calls are in flight. The answers are then applied in one
transaction that first re-reads (and on PostgreSQL/MySQL locks) the rows it may write, so a
workflow updating a video's status or metadata meanwhile never loses its write.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from opusclip_lib.api import APIError, YouTubeClient
from opusclip_lib.api.models.youtube import Video as YouTubeVideo
from opusclip_lib.api.models.youtube import VideoListResponse
from opusclip_lib.api.youtube import MAX_IDS_PER_CALL, check_video_ids
from opusclip_lib.db import Connection, Database, videos
from opusclip_lib.pipelines import map_bounded
from opusclip_lib.resilience.fallback import Fallback
from opusclip_lib.resilience.quota import YOUTUBE_QUOTA_COSTS
from opusclip_lib.sync.policy import UPSTREAM_COLUMNS, Decision, decide
from opusclip_lib.sync.report import SyncReport

Answers = dict[str, YouTubeVideo | None]  # youtube id -> its item, None if YouTube has none


async def sync_videos(db: Database, youtube: YouTubeClient, *, add: Iterable[str] = (),
                      concurrency: int = 4, label: str | None = None) -> SyncReport:
    """Refresh all stored videos (plus ``add``: new ids, inserted if YouTube knows them).

    Keep one ``youtube`` client for repeated syncs: it remembers each call's ETag, and an
    unchanged set of 50 videos is then answered 304 Not Modified. Calls and quota in the report
    are the client's usage during the sync, so don't share it with other work meanwhile. The
    sync is recorded in ``db.recorder`` (``kind="sync"``) with the report's counts as labels.
    """
    with db.recorder.measure("sync", "youtube.videos", label=label) as labels:
        started = time.perf_counter()
        stored = await videos.stored_youtube_ids(db)
        ids = sorted(set(stored) | set(check_video_ids(add)))
        chunks = [ids[i:i + MAX_IDS_PER_CALL] for i in range(0, len(ids), MAX_IDS_PER_CALL)]
        usage = youtube.usage
        calls, cached, units = usage.calls, usage.cached, usage.cost
        pages = await map_bounded(functools.partial(_fetch, youtube), chunks, limit=concurrency)
        not_modified = usage.cached - cached
        answers: Answers = {}
        errors: dict[str, str] = {}
        for chunk, page in zip(chunks, pages, strict=True):
            if isinstance(page, str):
                errors.update(dict.fromkeys(chunk, page))
            else:
                items = {item.id: item for item in page.items}
                answers.update({youtube_id: items.get(youtube_id) for youtube_id in chunk})
        outcomes = await _apply(db, answers, errors)
        counts = Counter(outcomes.values())
        report = SyncReport(
            checked=len(ids), added=counts["added"], changed=counts["changed"],
            unchanged=counts["unchanged"], deleted=counts["deleted"],
            restored=counts["restored"],
            errors=errors | {youtube_id: "not found on YouTube" for youtube_id, outcome
                             in outcomes.items() if outcome == "missing"},
            calls=usage.calls - calls, not_modified_calls=not_modified,
            quota_units=usage.cost - units,
            saved_units=not_modified * YOUTUBE_QUOTA_COSTS["videos.list"],
            seconds=time.perf_counter() - started, label=label)
        labels.update({k: v for k, v in report.as_row().items() if k != "seconds"})
    return report


async def _fetch(youtube: YouTubeClient, chunk: list[str]) -> VideoListResponse | str:
    """One videos.list call, or why it cannot be trusted (its ids are then neither updated nor
    marked deleted: a failed call says nothing about whether a video exists)."""
    try:
        page = await youtube.videos_page(chunk)
    except APIError as exc:
        return f"{type(exc).__name__}: {exc}"
    if isinstance(page, Fallback):
        return f"answered from a fallback ({page.source}: {page.reason}), not from YouTube"
    return page


async def _apply(db: Database, answers: Answers, errors: dict[str, str]) -> dict[str, str]:
    """Decide and write every answered video in one transaction; returns each one's outcome
    (videos the policy refuses go to ``errors`` instead)."""
    if not answers:
        return {}
    now = datetime.now(UTC)
    async with db.transaction() as tx:
        rows = await videos.lock_videos(tx, list(answers), ("status", *UPSTREAM_COLUMNS))
        decisions: dict[str, Decision] = {}
        for youtube_id, item in answers.items():
            try:
                decisions[youtube_id] = decide(youtube_id, rows.get(youtube_id), item, now)
            except ValueError as exc:
                errors[youtube_id] = str(exc)
        await _write(tx, [d.upsert for d in decisions.values() if d.upsert is not None],
                     [d.status for d in decisions.values() if d.status is not None])
    return {youtube_id: decision.outcome for youtube_id, decision in decisions.items()}


async def _write(tx: Connection, upserts: list[Mapping[str, object]],
                 statuses: list[Mapping[str, object]]) -> None:
    """Batch upsert of upstream columns (new ids get the table's defaults, known ones keep
    their status and url), then a batch update of the statuses the policy changes."""
    if upserts:
        await videos.upsert_videos(tx, upserts, update=UPSTREAM_COLUMNS)
    if statuses:
        await videos.update_videos(tx, statuses, key="youtube_id")
