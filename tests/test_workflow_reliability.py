"""The workflow never loses or duplicates work: a worker killed with SIGKILL and restarted, a
cancelled batch, and bad input each end in a clean, explained state.

SQLite always; PostgreSQL in a private scratch schema via the ``postgres_url`` fixture.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import psutil
import pytest

from opusclip_lib.db import Database, InvalidYouTubeIdError, connect, jobs, videos
from opusclip_lib.db.jobs import ACTIVE
from opusclip_lib.db.maintenance import scratch_database
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.endpoints import sample_media, sandbox_endpoints
from opusclip_lib.workflow import (
    KIND,
    NAIVE,
    UNLIMITED,
    VideoFiles,
    WorkflowConfig,
    open_services,
    run_batch,
)
from tests.media_files import corrupt_mp4, silent_video

VIDEOS = ["opusSample1", "R-j_8U_m7aS", "y4SXvE9rwLb"]
TINY = {"max_clip_s": 2.0, "clips": 2, "heartbeat_s": 0.2, "stale_after_s": 1.0,
        "retry_backoff_s": 0.05, "poll_s": 0.05}


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/workflow.db"
        return
    server = request.getfixturevalue("postgres_url")
    async with scratch_database(server, prefix="opusclip_workflow_test") as url:
        yield url


def partials(root: Path) -> list[Path]:
    return sorted(root.rglob(".*.part*"))


def ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True)
            if "ffmpeg" in p.name().lower()]


async def assert_nothing_running(db: Database) -> None:
    counts = await jobs.queue_counts(db)
    assert not ACTIVE & counts.keys(), f"jobs left in a running status: {counts}"


async def assert_clean_and_complete(db: Database, work_dir: Path, youtube_ids: list[str]) -> None:
    """Every video completed by exactly one job, each clip once, and the folder holds exactly
    the files the rows point to: nothing partial, nothing orphaned."""
    for youtube_id in youtube_ids:
        video = await videos.find_video(db, youtube_id)
        assert video is not None, youtube_id
        assert video.status == "completed", youtube_id
        [job] = await jobs.list_jobs(db, video_id=video.id)
        assert job.status == "completed"
        assert job.kind == KIND
        events = await jobs.job_events(db, job.id)
        assert [e.to_status for e in events].count("completed") == 1
        rows = await db.fetch("SELECT * FROM clips WHERE video_id = ? ORDER BY id", (video.id,))
        spans = {(row["start_s"], row["end_s"]) for row in rows}
        assert rows
        assert len(spans) == len(rows), "duplicate clips"
        files = VideoFiles.of(work_dir, youtube_id)
        expected = {files.metadata, files.source, files.transcript, files.highlights}
        for row in rows:
            clip = files.clip(row["id"])
            assert (row["clip_path"], row["thumbnail_path"], row["voiceover_path"]) == (
                str(clip.video), str(clip.thumbnail), str(clip.voiced))
            assert row["status"] == "completed"
            expected |= {clip.video, clip.thumbnail, clip.voice, clip.voiced}
        on_disk = {path for path in files.folder.rglob("*") if not path.is_dir()}
        assert on_disk == expected, f"{youtube_id}: unexpected {on_disk ^ expected}"
    assert partials(work_dir) == []
    await assert_nothing_running(db)


# --- (1) a worker process killed with SIGKILL, then restarted -------------------------------

def rendering(work_dir: Path) -> list[Path]:
    """Clips ffmpeg is writing right now (their temp names)."""
    return [path for path in partials(work_dir) if path.suffix == ".mp4"]


def worker_command(url: str, work_dir: Path) -> list[str]:
    return [sys.executable, "-m", "opusclip_lib.workflow.worker", "--database-url", url,
            "--work-dir", str(work_dir), "--videos", ",".join(VIDEOS), "--concurrency", "3",
            "--clips", "2", "--max-clip-seconds", "2", "--heartbeat", "0.2",
            "--stale-after", "1", "--retry-backoff", "0.05", "--latency", "stability=150"]


async def test_worker_killed_midway_resumes_without_loss_or_duplicates(
        database_url: str, tmp_path: Path) -> None:
    work_dir = tmp_path / "work"
    system_temp = tmp_path / "system-temp"  # the worker's TMPDIR: a kill must leave it empty
    system_temp.mkdir()
    command = worker_command(database_url, work_dir)
    # A child the test freezes and kills by signal: the loop never waits on it.
    worker = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE,  # noqa: ASYNC220
                              stderr=subprocess.PIPE,
                              env={**os.environ, "TMPDIR": str(system_temp)})
    try:
        deadline = time.monotonic() + 40
        # Wait for ffmpeg's temp file (.mp4): small files also pass through a temp name, but
        # only for microseconds. Then freeze the worker and its ffmpeg (SIGSTOP) and look again:
        # a clip that finished in between is renamed already, so thaw and catch the next one.
        # Frozen, nothing can rename the file before the kill.
        while True:
            while not rendering(work_dir):
                assert worker.poll() is None, worker.communicate()
                assert time.monotonic() < deadline, "the worker never started rendering"
                await asyncio.sleep(0.01)
            os.killpg(worker.pid, signal.SIGSTOP)
            await asyncio.sleep(0.05)  # let the stop reach every process of the group
            if rendering(work_dir):
                break
            os.killpg(worker.pid, signal.SIGCONT)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its ffmpeg, like a crash
    finally:
        worker.kill()
        worker.communicate()
    assert partials(work_dir), "the kill should leave a half-written clip behind"
    assert list(system_temp.iterdir()) == [], "render scratch belongs in the work folder"
    async with connect(database_url) as db:
        counts = await jobs.queue_counts(db)
        assert ACTIVE & counts.keys(), counts
        assert counts.get("completed", 0) < len(VIDEOS), counts

    restarted = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                        timeout=90)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    summary = json.loads(restarted.stdout.strip().splitlines()[-1])
    assert summary["statuses"] == {"completed": len(VIDEOS)}

    async with connect(database_url) as db:
        await assert_clean_and_complete(db, work_dir, VIDEOS)
        reaped = await db.fetchval("SELECT count(*) FROM job_events WHERE to_status = 'pending' "
                                   "AND message LIKE 'no heartbeat%'")
        assert reaped >= 1, "the restarted worker should have reaped the dead one's jobs"


# --- (2) a cancelled batch --------------------------------------------------------------------

async def test_cancelled_batch_leaves_no_process_task_or_connection(
        database_url: str, tmp_path: Path) -> None:
    config = WorkflowConfig(work_dir=tmp_path / "work", **TINY)
    endpoints = sandbox_endpoints(build_app(SandboxConfig.unlimited()))
    async with connect(database_url, max_size=6) as db, \
            open_services(endpoints, limits=UNLIMITED) as services:
        batch = asyncio.create_task(run_batch(db, services, VIDEOS, config, concurrency=3))
        deadline = time.monotonic() + 30
        while not ffmpeg_children():
            assert not batch.done(), "the batch ended before any render started"
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        batch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch
        assert ffmpeg_children() == []
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert db.pool_stats().in_use == 0
        assert partials(config.work_dir) == []
        await assert_nothing_running(db)
        assert (await jobs.queue_counts(db)).get("pending", 0) >= 1  # handed back, not lost
        report = await run_batch(db, services, VIDEOS, config, concurrency=3)  # resumes
        assert report.statuses == {"completed": len(VIDEOS)}
        await assert_clean_and_complete(db, config.work_dir, VIDEOS)


# --- (3) bad input ----------------------------------------------------------------------------

SILENT, CORRUPT, UNKNOWN = "cpCGybY9lMR", "PixOqoRGrB5", "zzzzzzzzzzz"


def stand_in_media(folder: Path) -> Callable[[str], Path]:
    """The sandbox's media, but a corrupt file for CORRUPT and silence for SILENT."""
    corrupt = corrupt_mp4(folder / "corrupt.mp4")
    silent = silent_video(folder / "silent.mp4")
    media = {CORRUPT: corrupt, SILENT: silent}
    return lambda youtube_id: media.get(youtube_id) or sample_media(youtube_id)


async def failures(db: Database) -> dict[str, tuple[str | None, str | None, str | None]]:
    """youtube id -> (stage, error_code, error_message) of its failed job."""
    found = {}
    for job in await jobs.list_jobs(db, status="failed"):
        found[job.payload["youtube_id"]] = (job.stage, job.error_code, job.error_message)
    return found


async def test_bad_inputs_fail_with_stage_and_reason(database_url: str, tmp_path: Path) -> None:
    config = WorkflowConfig(work_dir=tmp_path / "work", **TINY)
    endpoints = dataclasses.replace(sandbox_endpoints(build_app(SandboxConfig.unlimited())),
                                    youtube_media=stand_in_media(tmp_path))
    async with connect(database_url) as db, \
            open_services(endpoints, limits=UNLIMITED) as services:
        report = await run_batch(db, services, ["opusSample1", UNKNOWN, SILENT, CORRUPT], config,
                                 concurrency=4)
        assert report.statuses == {"completed": 1, "failed": 3}
        failed = await failures(db)
        assert failed[UNKNOWN][:2] == ("metadata", "video_not_found")
        assert UNKNOWN in failed[UNKNOWN][2]
        assert failed[SILENT][:2] == ("analyze", "no_highlights")
        assert "no speech" in failed[SILENT][2]
        assert failed[CORRUPT][:2] == ("download", "not_media")
        assert "not readable media" in failed[CORRUPT][2]
        assert all(message.startswith(f"{stage}: ") for stage, _, message in failed.values())
        for youtube_id in failed:
            assert (await videos.find_video(db, youtube_id)).status == "failed"
        await assert_nothing_running(db)
        assert partials(config.work_dir) == []


def broken_highlights(request: httpx.Request) -> httpx.Response:
    """A well-formed completion whose content breaks the HighlightPicks schema."""
    content = json.dumps({"highlights": [{"start": 12.0, "title": "No end, no score"}]})
    return httpx.Response(200, json={
        "id": "chatcmpl-broken", "object": "chat.completion", "created": 0,
        "model": "gpt-4o-mini", "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant",
                                                         "content": content}}]})


@pytest.mark.parametrize("breakage", ["mock transport", "sandbox fault"])
async def test_llm_answer_breaking_the_schema_fails_the_analysis(
        database_url: str, tmp_path: Path, breakage: str) -> None:
    sandbox = SandboxConfig.unlimited()
    app = build_app(sandbox)
    transports: dict[str, httpx.AsyncBaseTransport] = {}
    if breakage == "mock transport":
        heard = httpx.ASGITransport(app)

        async def answer(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/audio/transcriptions"):  # only the chat breaks
                return await heard.handle_async_request(request)
            return broken_highlights(request)

        transports["openai"] = httpx.MockTransport(answer)
    else:
        sandbox.inject("openai.chat.completions", "malformed")  # half the body: bad JSON
    config = WorkflowConfig(work_dir=tmp_path / "work", render=False, **TINY)
    async with connect(database_url) as db, \
            open_services(sandbox_endpoints(build_app(sandbox)).with_transports(transports),
                          limits=UNLIMITED) as services:
        report = await run_batch(db, services, ["opusSample1"], config)
        assert report.statuses == {"failed": 1}
        stage, code, message = (await failures(db))["opusSample1"]
        assert (stage, code) == ("analyze", "openai.malformed_response")
        assert "schema" in message or "does not match" in message
        assert not VideoFiles.of(config.work_dir, "opusSample1").highlights.exists()
        await assert_nothing_running(db)


async def test_malformed_id_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    config = WorkflowConfig(work_dir=tmp_path / "work", render=False, **TINY)
    endpoints = sandbox_endpoints(build_app(SandboxConfig.unlimited()))
    async with connect(f"sqlite:///{tmp_path}/w.db") as db, \
            open_services(endpoints, limits=UNLIMITED) as services:
        with pytest.raises(InvalidYouTubeIdError):
            await run_batch(db, services, ["opusSample1", "not an id"], config)
        assert await videos.count_videos(db) == 0
        assert await jobs.queue_counts(db) == {}


async def test_retryable_failure_goes_back_to_pending_then_completes(tmp_path: Path) -> None:
    sandbox = SandboxConfig.unlimited()
    sandbox.inject("stability.generate", "server_error", times=1)
    config = WorkflowConfig(work_dir=tmp_path / "work", render=False, mode=NAIVE, **TINY)
    async with connect(f"sqlite:///{tmp_path}/w.db") as db, \
            open_services(sandbox_endpoints(build_app(sandbox)), cached=False) as services:
        report = await run_batch(db, services, ["opusSample1"], config)
        assert report.statuses == {"completed": 1}
        [job] = await jobs.list_jobs(db)
        assert job.attempts == 2
        moves = [(e.from_status, e.to_status) for e in await jobs.job_events(db, job.id)]
        assert ("rendering", "pending") in moves  # the thumbnail stage runs in "rendering"
        assert services.usage()["openai"].calls == 2  # transcription and highlights, once each:
        # the retry skipped the finished stages
