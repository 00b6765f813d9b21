"""Solutions to the exercises of notebooks/33_data_synchronization.ipynb.

Run: .venv/bin/python notebooks/solutions/33_data_synchronization_solutions.py
Like the notebook, it uses ``OPUSCLIP_DATABASE_URL`` (default: the SQLite file in work/), starts
from an empty schema for each exercise, and talks to the in-process YouTube sandbox (an offline
stand-in following the Data API v3 spec) on the real base URL through ``httpx.ASGITransport``.
A script starts its own event loop with asyncio.run(); in a notebook, paste the body of a
function into a cell and ``await`` it instead.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from starlette.applications import Starlette

from opusclip_lib import config
from opusclip_lib.api import YouTubeClient
from opusclip_lib.db import Database, connect, reset, videos
from opusclip_lib.resilience import Fallback
from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, build_app
from opusclip_lib.sandbox.catalogue import Catalogue, CatalogueVideo
from opusclip_lib.sandbox.youtube import YouTubeAPI
from opusclip_lib.sync import decide, sync_videos
from opusclip_lib.sync.policy import upstream_columns, youtube_metadata

IDS_PER_CALL = 50


def write_channel(folder: Path) -> tuple[Path, Catalogue]:
    """The notebook's channel: the 40 catalogue videos plus 200 re-uploads, 240 in all."""
    originals = Catalogue.load(SandboxConfig().catalogue_path).videos
    reruns = [CatalogueVideo.model_validate({**video.model_dump(), "id": f"rerun{part}x{n:04d}",
                                             "title": f"{video.title} (part {part})"})
              for part in range(2, 7) for n, video in enumerate(originals)]
    channel = Catalogue(videos=[*originals, *reruns])
    path = folder / "catalogue.json"
    path.write_text(channel.model_dump_json())
    return path, channel


@dataclass
class World:
    """One exercise's database, YouTube sandbox and (ETag-keeping) client."""

    db: Database
    app: Starlette
    upstream: YouTubeAPI
    youtube: YouTubeClient
    ids: list[str]


@asynccontextmanager
async def fresh_world(db: Database, catalogue_path: Path, channel: Catalogue,
                      **settings: object) -> AsyncIterator[World]:
    """A clean schema with every video of the channel stored (status ``queued``)."""
    await reset(db)
    ids = sorted(video.id for video in channel.videos)
    await videos.insert_videos(db, [{"youtube_id": youtube_id, "status": "queued"}
                                    for youtube_id in ids])
    app = build_app(SandboxConfig(catalogue_path=catalogue_path, **settings))
    async with YouTubeClient(SANDBOX_KEY, transport=httpx.ASGITransport(app),
                             recorder=db.recorder) as youtube:
        yield World(db, app, app.state.sandbox.youtube, youtube, ids)


async def exercise_1_predict_the_200s(world: World, channel: Catalogue) -> None:
    await sync_videos(world.db, world.youtube)
    target = world.ids[123]
    predicted = world.ids.index(target) // IDS_PER_CALL  # ids sorted, 50 per call
    world.upstream.update_video(target, viewCount=channel.by_id[target].viewCount + 1)
    # One call at a time, so the HTTP events come in the order of the chunks.
    report = await sync_videos(world.db, world.youtube, concurrency=1)
    statuses = world.db.recorder.frame("http").tail(report.calls)["status"].tolist()
    assert [n for n, status in enumerate(statuses) if status == 200] == [predicted], statuses
    assert report.written == 1, "only the changed video is written"
    print(f"1. predicted call #{predicted + 1} answers 200; got statuses {statuses}; "
          f"rows written: {report.written} ({report.changed} changed)")


async def exercise_2_policy_by_hand(world: World) -> None:
    youtube_id = world.ids[0]
    answer = await world.youtube.videos([youtube_id])
    [item] = answer.value if isinstance(answer, Fallback) else answer
    now = datetime.now(UTC)
    synced = {"status": "completed", **upstream_columns(item),
              "metadata": {"notes": "mine", "youtube": youtube_metadata(item)}}
    stale = {**synced, "metadata": {"notes": "mine", "youtube": {"etag": "an older etag"}}}
    gone = decide(youtube_id, synced, None, now)
    assert gone.status is not None
    deleted = {**synced, "status": gone.status["status"], "metadata": gone.status["metadata"]}
    moved_on = {**deleted, "status": "archived"}
    cases = {"same etag, same columns": decide(youtube_id, synced, item, now),
             "etag changed": decide(youtube_id, stale, item, now),
             "missing from the answer": gone,
             "back, status untouched": decide(youtube_id, deleted, item, now),
             "back, status moved on": decide(youtube_id, moved_on, item, now)}
    assert {case: decision.outcome for case, decision in cases.items()} == {
        "same etag, same columns": "unchanged", "etag changed": "changed",
        "missing from the answer": "deleted", "back, status untouched": "restored",
        "back, status moved on": "restored"}
    assert cases["back, status moved on"].status["status"] == "archived"
    print("2. the policy by hand:")
    for case, decision in cases.items():
        status = decision.status["status"] if decision.status else "-"
        print(f"   {case:<25} -> {decision.outcome:<9} status written: {status}")


async def exercise_3_restored_but_moved_on(world: World, channel: Catalogue) -> None:
    youtube_id = world.ids[7]
    await sync_videos(world.db, world.youtube)
    world.upstream.delete_video(youtube_id)
    await sync_videos(world.db, world.youtube)
    video = await videos.find_video(world.db, youtube_id)
    assert video is not None
    await videos.update_video(world.db, video.id, status="archived")  # someone decided
    world.upstream.add_video(channel.by_id[youtube_id])
    report = await sync_videos(world.db, world.youtube)
    video = await videos.find_video(world.db, youtube_id)
    assert video is not None
    assert report.restored == 1
    assert video.status == "archived", "a later local decision is kept"
    assert "deleted_at" not in video.metadata["youtube"], "the deletion note is gone"
    print(f"3. back upstream: {report.restored} restored; status now {video.status!r}, "
          f"deletion note gone: {'deleted_at' not in video.metadata['youtube']}")
    # 'archived' stays: the sync restores the status it set itself ('deleted_upstream') and
    # nothing else. Someone archived the video after the takedown, a later and deliberate
    # local decision; the sync must not undo it. YouTube's data (title, statistics) is fresh.


async def exercise_4_quota_budget(world: World) -> None:
    syncs_per_day = 24 * 60 // 15
    calls_per_sync = 10_000 // syncs_per_day
    print(f"4. {syncs_per_day} syncs a day -> {calls_per_sync} calls per sync -> "
          f"{calls_per_sync * IDS_PER_CALL:,} videos every 15 minutes (if 304s are billed)")
    report = await sync_videos(world.db, world.youtube)  # the sandbox allows 3 units today
    reasons = sorted({reason.split(":")[0] for reason in report.errors.values()})
    deleted = await videos.count_videos(world.db, status="deleted_upstream")
    assert reasons == ["QuotaExceededError"], reasons
    assert deleted == 0, "a refused call never counts as a deletion"
    print(f"   with 3 units left: {report.checked} checked, {report.written} written, "
          f"{len(report.errors)} errors ({', '.join(reasons)}); marked deleted: {deleted}")
    # The calls past the quota fail with 403 quotaExceeded: the videos they asked about are
    # reported as errors and left alone. None is marked deleted: a refused call says nothing
    # about a video.
    # Alert on report.errors, and keep the sync's budget below the day's quota.


async def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        catalogue_path, channel = write_channel(Path(folder))
        async with connect(config.database_url()) as db:
            print(f"backend: {db.name}")
            async with fresh_world(db, catalogue_path, channel) as world:
                await exercise_1_predict_the_200s(world, channel)
            async with fresh_world(db, catalogue_path, channel) as world:
                await exercise_2_policy_by_hand(world)
            async with fresh_world(db, catalogue_path, channel) as world:
                await exercise_3_restored_but_moved_on(world, channel)
            async with fresh_world(db, catalogue_path, channel) as world:
                world.app.state.sandbox.config.youtube.daily_quota = 3
                await exercise_4_quota_budget(world)
    print(f"solutions ran in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
