"""One video through every stage, and each stage's idempotency: skip what is done, adopt a file
whose row was never committed, redo a file that went missing."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opusclip_lib.api import MalformedResponseError
from opusclip_lib.api.models.openai import Highlight
from opusclip_lib.config import data_dir
from opusclip_lib.db import Database, clips, connect, jobs, videos
from opusclip_lib.media import FFmpegError, load_transcript, probe, sample_transcript
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import CircuitOpenError
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.catalogue import Catalogue
from opusclip_lib.sandbox.endpoints import sandbox_endpoints
from opusclip_lib.workflow import (
    NAIVE,
    STAGE_NAMES,
    UNLIMITED,
    Failure,
    JobUpdate,
    NoHighlightsError,
    Services,
    VideoFiles,
    VideoRun,
    WorkflowConfig,
    classify,
    open_services,
    plan,
    run_video,
)
from opusclip_lib.workflow.stages import clip_rows

TINY = {"max_clip_s": 2.0, "clips": 2, "heartbeat_s": 0.2, "poll_s": 0.05}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(f"sqlite:///{tmp_path}/workflow.db") as database:
        yield database


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    endpoints = sandbox_endpoints(build_app(SandboxConfig.unlimited()))
    async with open_services(endpoints, limits=UNLIMITED) as opened:
        yield opened


def calls(services: Services) -> dict[str, int]:
    return {name: usage.calls for name, usage in services.usage().items()}


async def run_stages(db: Database, services: Services, config: WorkflowConfig,
                     youtube_id: str) -> VideoRun:
    """Every stage once, outside the job machinery, committing what each returns."""
    video = await videos.find_video(db, youtube_id)
    assert video is not None
    run = VideoRun(db, services, config, video, VideoFiles.of(config.work_dir, youtube_id))
    for stage in plan(config):
        write = await stage.run(run)
        if write is not None:
            async with run.unit() as ex:
                await write(ex)
    return run


async def test_one_video_end_to_end(db: Database, services: Services, tmp_path: Path) -> None:
    config = WorkflowConfig(work_dir=tmp_path / "work", **TINY)
    recorder = Recorder()
    updates: list[JobUpdate] = []

    async def on_change(update: JobUpdate) -> None:
        committed = await jobs.get_job(db, update["job_id"])  # another connection sees it
        assert (committed.status, committed.stage) == (update["status"], update["stage"])
        updates.append(update)

    job = await run_video(db, services, "opusSample1", config, on_change=on_change,
                          recorder=recorder)
    assert (job.status, job.progress, job.error_code) == ("completed", 1.0, None)
    video = await videos.get_video(db, job.video_id)
    listed = Catalogue.load(data_dir() / "catalogue.json").by_id["opusSample1"]
    assert (video.status, video.title, video.duration_s) == (
        "completed", listed.title, listed.seconds)
    rows = await clips.list_clips(db, video.id)
    assert 1 <= len(rows) <= 2
    assert [c.ranking for c in rows] == list(range(1, len(rows) + 1))
    for clip in rows:
        assert clip.end_s - clip.start_s <= 2.0
        assert clip.hook
        assert clip.transcript
        rendered = await probe(clip.clip_path)
        assert (rendered.width, rendered.height) == (360, 640)
        assert abs(rendered.duration_s - (clip.end_s - clip.start_s)) < 0.15
        assert Path(clip.thumbnail_path).read_bytes().startswith(b"\x89PNG")  # noqa: ASYNC240 - a test's look at its own files
        voiced = await probe(clip.voiceover_path)
        assert voiced.has_audio
        assert abs(voiced.duration_s - rendered.duration_s) < 0.15
        with wave.open(str(VideoFiles.of(config.work_dir, "opusSample1").clip(clip.id).voice)
                       ) as audio:
            assert audio.getframerate() == 22_050
            assert audio.getnframes() > 0

    stages = recorder.frame("stage")
    assert list(stages["name"]) == list(STAGE_NAMES)
    assert set(stages["video"]) == {"opusSample1"}
    assert (stages["start"].diff().dropna() > 0).all()
    statuses = [u["status"] for u in updates]
    assert statuses[0] == "pending"
    assert statuses[-1] == "completed"
    assert list(dict.fromkeys(statuses)) == ["pending", "downloading", "transcribing",
                                             "analyzing", "rendering", "completed"]
    assert [u["stage"] for u in updates[2:-1]] == list(STAGE_NAMES)  # after enqueue, claim
    assert all(u["youtube_id"] == "opusSample1" for u in updates)


async def test_stages_skip_adopt_and_redo(db: Database, services: Services,
                                          tmp_path: Path) -> None:
    config = WorkflowConfig(work_dir=tmp_path / "work", **TINY)
    job = await run_video(db, services, "opusSample1", config)
    assert job.status == "completed"
    files = VideoFiles.of(config.work_dir, "opusSample1")
    artifacts = sorted(p for p in files.folder.rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in artifacts}
    before = calls(services)

    await run_stages(db, services, config, "opusSample1")  # row and file: nothing to do
    assert calls(services) == before
    assert {p: p.stat().st_mtime_ns for p in artifacts} == stamps

    # Killed after each file's rename but before its commit: the rows know nothing.
    await videos.update_video(db, job.video_id, status="queued", title=None)
    await db.execute("UPDATE clips SET clip_path = NULL, thumbnail_path = NULL, "
                     "voiceover_path = NULL, status = 'pending'")
    run = await run_stages(db, services, config, "opusSample1")
    assert calls(services) == before, "adopting files must not call any API again"
    assert {p: p.stat().st_mtime_ns for p in artifacts} == stamps, "nor render again"
    assert run.video.status == "analyzed"  # "completed" is the engine's last move, not a stage's
    assert (await videos.get_video(db, job.video_id)).title == "Async Python in Two Minutes"
    adopted = await clips.list_clips(db, job.video_id)
    assert all(c.clip_path and c.thumbnail_path and c.voiceover_path for c in adopted)

    # A file lost since: exactly that work again.
    Path(adopted[0].thumbnail_path).unlink()  # noqa: ASYNC240 - a test's look at its own files
    await run_stages(db, services, config, "opusSample1")
    after = calls(services)
    assert after["stability"] == before["stability"] + 1
    assert {k: v for k, v in after.items() if k != "stability"} == {
        k: v for k, v in before.items() if k != "stability"}
    assert Path(adopted[0].thumbnail_path).exists()  # noqa: ASYNC240 - a test's look at its own files
    assert await clips.count_clips(db, job.video_id) == len(adopted)  # never duplicated


async def test_naive_mode_writes_row_by_row_to_the_same_result(tmp_path: Path) -> None:
    results = {}
    for mode in ("naive", "optimised"):
        config = WorkflowConfig(work_dir=tmp_path / mode, render=False, **TINY,
                                **({"mode": NAIVE} if mode == "naive" else {}))
        async with connect(f"sqlite:///{tmp_path}/{mode}.db") as db, \
                open_services(sandbox_endpoints(build_app(SandboxConfig.unlimited())),
                              cached=mode != "naive") as services:
            job = await run_video(db, services, "R-j_8U_m7aS", config)
            assert job.status == "completed"
            rows = await clips.list_clips(db, job.video_id)
            results[mode] = [(c.start_s, c.end_s, c.title, c.voiceover_path is not None)
                             for c in rows]
            queries = set(db.recorder.frame("query")["name"])
            assert ("batch update clips" in queries) == (mode == "optimised")
            assert (services.policy("openai") is None) == (mode == "naive")
    assert results["naive"] == results["optimised"]
    assert results["naive"]


def test_clip_rows_keep_usable_distinct_spans_best_first() -> None:
    transcript = load_transcript(sample_transcript())
    picks = [Highlight(start=10, end=40, title="long", hook="h", virality_score=50),
             Highlight(start=10, end=12, title="same span", hook="h", virality_score=40),
             Highlight(start=60, end=60.5, title="too short", hook="h", virality_score=99),
             Highlight(start=120, end=130, title="past the end", hook="h", virality_score=90),
             Highlight(start=80, end=83, title="best", hook="h", virality_score=70)]
    config = WorkflowConfig(max_clip_s=2.0)
    rows = clip_rows(7, picks, transcript, config)
    assert [(r["title"], r["start_s"], r["end_s"], r["ranking"]) for r in rows] == [
        ("past the end", 120.0, 121.953, 1), ("best", 80.0, 82.0, 2), ("long", 10.0, 12.0, 3)]
    assert rows[1]["transcript"] == transcript.text_between(80.0, 82.0)


def test_failures_are_classified_with_stage_code_and_retry() -> None:
    malformed = MalformedResponseError("bad", provider="openai", status_code=200)
    assert classify(malformed, "analyze") == Failure("openai.malformed_response",
                                                     "analyze: openai 200: bad", False)
    assert classify(CircuitOpenError("stability", 3.0, reason="5 failures"),
                    "thumbnail").code == "stability.circuit_open"
    assert classify(CircuitOpenError("stability", 3.0, reason="x"), "thumbnail").retryable
    assert classify(NoHighlightsError("none"), "analyze").code == "no_highlights"
    ffmpeg = classify(FFmpegError("ffmpeg failed", returncode=1, stderr_tail="boom"), "render")
    assert (ffmpeg.code, ffmpeg.retryable) == ("ffmpeg_failed", False)
    bug = classify(KeyError("title"), None)
    assert (bug.code, bug.message) == ("internal_error", "start: KeyError: 'title'")


async def test_early_thumbnail_failure_is_the_thumbnail_stages_after_the_render(
        db: Database, tmp_path: Path) -> None:
    """Thumbnails are asked for beside the render; a refusal there neither stops the render nor
    is blamed on it: the job fails in ``thumbnail``, with every clip rendered."""
    sandbox = SandboxConfig.unlimited()
    sandbox.inject("stability.generate", "server_error")
    config = WorkflowConfig(work_dir=tmp_path / "work", max_attempts=1, **TINY)
    async with open_services(sandbox_endpoints(build_app(sandbox)), limits=UNLIMITED) as services:
        job = await run_video(db, services, "opusSample1", config)
    assert (job.status, job.stage) == ("failed", "thumbnail")
    assert job.error_code is not None
    assert job.error_code.startswith("stability.")
    rendered = await clips.list_clips(db, job.video_id)
    assert rendered
    assert all(clip.clip_path and Path(clip.clip_path).exists()  # noqa: ASYNC240 - a test's look at its own files
               for clip in rendered)
    assert not any(clip.thumbnail_path for clip in rendered)
