"""YouTube sync against the sandbox on every backend: the first sync fills, the second is all
304s, upstream changes and deletions land as the conflict policy says, local fields never move.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import matplotlib
import matplotlib.pyplot as plt
import pytest

from opusclip_lib.api import YouTubeClient
from opusclip_lib.charts.monitoring import sync_quota
from opusclip_lib.db import Database, Video, clips, videos
from opusclip_lib.sandbox import Sandbox, SandboxConfig, build_app
from opusclip_lib.sync import DELETED_UPSTREAM, frame, sync_videos

matplotlib.use("Agg")
STORED = 5


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig()


@pytest.fixture
def app(sandbox_config: SandboxConfig) -> object:
    return build_app(sandbox_config)


@pytest.fixture
def sandbox(app: object) -> Sandbox:
    return app.state.sandbox  # type: ignore[attr-defined]


@pytest.fixture
async def youtube(app: object) -> AsyncIterator[YouTubeClient]:
    """One client for all the syncs of a test: it keeps the ETags that make 304s possible."""
    async with YouTubeClient("sandbox-key", transport=httpx.ASGITransport(app)) as client:
        yield client


@pytest.fixture
async def stored(db: Database, sandbox: Sandbox) -> list[str]:
    """Five catalogue videos stored the way the workflow leaves them: a local status, local
    metadata, a clip, and (for the first) a title edited locally."""
    ids = [video.id for video in sandbox.youtube.catalogue.videos[:STORED]]
    for n, youtube_id in enumerate(ids):
        video = await videos.insert_video(db, youtube_id, status="clipped" if n < 2 else "new",
                                          title="edited locally" if n == 0 else None,
                                          metadata={"notes": f"note {n}"})
        await clips.insert_clip(db, video.id, start_s=0, end_s=10, title=f"clip {n}")
    return ids


async def by_id(db: Database) -> dict[str, Video]:
    return {video.youtube_id: video for video in await videos.list_videos(db)}


async def clip_count(db: Database) -> int:
    return int(await db.fetchval("SELECT count(*) FROM clips"))


async def test_first_sync_fills_and_the_second_is_answered_304(
        db: Database, youtube: YouTubeClient, sandbox: Sandbox, stored: list[str]) -> None:
    first = await sync_videos(db, youtube, label="fill")
    assert (first.checked, first.changed, first.unchanged, first.errors) == (STORED, STORED, 0, {})
    assert (first.calls, first.not_modified_calls, first.quota_units, first.saved_units) == (
        1, 0, 1, 0)
    rows = await by_id(db)
    for n, youtube_id in enumerate(stored):
        upstream, row = sandbox.youtube.catalogue.by_id[youtube_id], rows[youtube_id]
        assert (row.title, row.channel, row.duration_s) == (
            upstream.title, upstream.channelTitle, upstream.seconds)  # upstream wins
        assert row.metadata["youtube"]["statistics"]["view_count"] == upstream.viewCount
        assert row.metadata["notes"] == f"note {n}"  # local metadata kept
        assert row.status == ("clipped" if n < 2 else "new")  # local status kept
    second = await sync_videos(db, youtube, label="again")
    assert (second.changed, second.unchanged, second.written) == (0, STORED, 0)
    assert second.calls == first.calls
    assert second.quota_units == first.quota_units
    assert second.not_modified_calls == 1
    assert second.saved_units == second.quota_units == 1
    assert {v.youtube_id: v.updated_at for v in (await by_id(db)).values()} == {
        v.youtube_id: v.updated_at for v in rows.values()}  # not one row rewritten
    assert await clip_count(db) == STORED
    events = db.recorder.frame("sync")
    assert list(events["label"]) == ["fill", "again"]
    assert list(events["saved_units"]) == [0, 1]
    chart = sync_quota(frame([first, second]))
    assert len(chart.patches) == 4  # two bars per sync: with data, and 304


async def test_upstream_changes_and_deletions_follow_the_policy(
        db: Database, youtube: YouTubeClient, sandbox: Sandbox, stored: list[str]) -> None:
    await sync_videos(db, youtube)
    grown, gone = stored[0], stored[1]
    views = sandbox.youtube.catalogue.by_id[grown].viewCount + 500
    sandbox.youtube.update_video(grown, viewCount=views, title="Retitled upstream")
    removed = sandbox.youtube.delete_video(gone)

    report = await sync_videos(db, youtube)
    assert (report.changed, report.deleted, report.unchanged) == (1, 1, STORED - 2)
    rows = await by_id(db)
    assert rows[grown].title == "Retitled upstream"
    assert rows[grown].metadata["youtube"]["statistics"]["view_count"] == views
    assert rows[grown].status == "clipped"
    assert rows[grown].metadata["notes"] == "note 0"
    assert rows[gone].status == DELETED_UPSTREAM  # marked, not deleted
    note = rows[gone].metadata["youtube"]
    assert note["status_before_deletion"] == "clipped"
    assert "deleted_at" in note
    assert rows[gone].metadata["notes"] == "note 1"
    assert await clip_count(db) == STORED  # its clip is still there

    again = await sync_videos(db, youtube)
    assert (again.deleted, again.unchanged, again.not_modified_calls) == (0, STORED, 1)

    sandbox.youtube.add_video(removed)
    back = await sync_videos(db, youtube)
    assert (back.restored, back.unchanged) == (1, STORED - 1)
    restored = (await by_id(db))[gone]
    assert restored.status == "clipped"
    assert "deleted_at" not in restored.metadata["youtube"]


async def test_a_failed_call_changes_nothing_and_marks_nothing_deleted(
        db: Database, youtube: YouTubeClient, sandbox: Sandbox, sandbox_config: SandboxConfig,
        stored: list[str]) -> None:
    await sync_videos(db, youtube)
    before = await by_id(db)
    sandbox.youtube.delete_video(stored[2])
    sandbox_config.inject("youtube.videos.list", "server_error", times=1)
    report = await sync_videos(db, youtube)
    assert report.errors.keys() == set(stored)
    assert "ServerError" in report.errors[stored[2]]
    assert report.written == 0
    assert report.checked == STORED
    assert await by_id(db) == before


async def test_new_ids_are_added_and_unknown_ones_reported(
        db: Database, youtube: YouTubeClient, sandbox: Sandbox, stored: list[str]) -> None:
    new = sandbox.youtube.catalogue.videos[STORED].id
    report = await sync_videos(db, youtube, add=[new, "notOnYouTub"])
    assert (report.added, report.changed, report.checked) == (1, STORED, STORED + 2)
    assert report.errors == {"notOnYouTub": "not found on YouTube"}
    added = (await by_id(db))[new]
    assert added.status == "new"
    assert added.url.endswith(new)
    assert added.title


async def test_a_workflow_write_during_the_sync_is_kept(
        db: Database, youtube: YouTubeClient, sandbox_config: SandboxConfig,
        stored: list[str]) -> None:
    """The workflow changes status and metadata while the videos.list call is in flight; the
    sync re-reads the row under its lock before merging, so neither write is lost."""
    sandbox_config.set_latency("youtube", 150)
    target = (await by_id(db))[stored[3]]

    async def workflow() -> None:
        await asyncio.sleep(0.05)
        await videos.update_video(db, target.id, status="rendering",
                                  metadata={"notes": "rendered", "clips": 3})

    report, _ = await asyncio.gather(sync_videos(db, youtube), workflow())
    assert report.changed == STORED
    row = (await by_id(db))[stored[3]]
    assert row.status == "rendering"
    assert row.metadata["notes"] == "rendered"
    assert row.metadata["clips"] == 3
    assert "etag" in row.metadata["youtube"]


async def test_metadata_that_is_not_an_object_is_left_alone(
        db: Database, youtube: YouTubeClient, stored: list[str]) -> None:
    odd = (await by_id(db))[stored[4]]
    await videos.update_video(db, odd.id, metadata=["a", "list"])
    report = await sync_videos(db, youtube)
    assert "not an object" in report.errors[stored[4]]
    assert report.changed == STORED - 1
    assert (await by_id(db))[stored[4]].metadata == ["a", "list"]
