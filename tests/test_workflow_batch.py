"""Batches: videos in flight and API requests stay within their bounds, the critical-path bound
is what ``opusclip bench pipeline`` measures against, the naive pipeline is the sequential
baseline, and the timeline data and charts come out of what was recorded."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from starlette.applications import Starlette

from opusclip_lib.charts.pipeline import (
    naive_vs_optimised,
    stage_gantt,
    throughput_vs_concurrency,
)
from opusclip_lib.db import Database, connect
from opusclip_lib.metrics import Recorder
from opusclip_lib.sandbox import build_app
from opusclip_lib.sandbox.endpoints import LATENCY_PROFILE_MS, sandbox_config, sandbox_endpoints
from opusclip_lib.workflow import (
    NAIVE,
    ApiLimits,
    StageProgress,
    WorkflowConfig,
    critical_path_bound,
    open_services,
    plan,
    run_batch,
    status_timeline,
)
from opusclip_lib.workflow.engine import JobUpdate

matplotlib.use("Agg")

IDS = ["opusSample1", "R-j_8U_m7aS", "y4SXvE9rwLb", "cpCGybY9lMR", "PixOqoRGrB5",
       "qY6K1Qjah4d", "fqRgz7IhYeP", "7-dUM2jNKog"]
SCALE = 0.05  # YouTube 5 ms, OpenAI 40 ms, Stability 100 ms, ElevenLabs 50 ms
PER_VIDEO_MS = {endpoint: ms for endpoint, ms in LATENCY_PROFILE_MS.items()
                if endpoint != "openai.audio.transcriptions"}
"""Every catalogue video's media is the sample talk: extracted and transcribed once (and warmed
up before timing), so the per-video path is the other calls."""
LATENCY = sum(PER_VIDEO_MS.values()) * SCALE / 1000
FAST = {"render": False, "heartbeat_s": 0.5, "poll_s": 0.02}


def sandbox(scale: float = SCALE) -> Starlette:
    """The profile's latencies, scaled; tiny thumbnails, since the in-process sandbox draws
    them on the event loop it shares with the pipeline."""
    config = sandbox_config(LATENCY_PROFILE_MS, scale=scale)
    config.stability.long_side_px = 16
    return build_app(config)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(f"sqlite:///{tmp_path}/batch.db", max_size=8) as database:
        yield database


def in_flight_peak(stages: pd.DataFrame) -> int:
    """Most videos between their first stage's start and last stage's end at one time."""
    spans = stages.groupby("video").agg(start=("start", "min"), end=("end", "max"))
    moments = sorted([(t, 1) for t in spans["start"]] + [(t, -1) for t in spans["end"]])
    peak = current = 0
    for _, step in moments:
        current += step
        peak = max(peak, current)
    return peak


async def test_videos_and_api_requests_stay_within_their_bounds(db: Database,
                                                                 tmp_path: Path) -> None:
    recorder = Recorder()
    limits = ApiLimits(concurrency={"elevenlabs": 2, "stability": 3}, throttle=False)
    config = WorkflowConfig(work_dir=tmp_path / "work", **FAST)
    async with open_services(sandbox_endpoints(sandbox()), limits=limits) as services:
        report = await run_batch(db, services, IDS[:6], config, concurrency=3,
                                 recorder=recorder)
        assert report.statuses == {"completed": 6}
        assert services.policy("elevenlabs").concurrency.peak == 2
        assert services.policy("stability").concurrency.peak == 3
    stages = recorder.frame("stage")
    assert in_flight_peak(stages) == 3
    assert len(stages) == 6 * len(plan(config))
    assert "render" not in set(stages["name"])


def test_the_critical_path_bound_is_concurrency_over_the_path() -> None:
    """How close a batch comes to it is ``opusclip bench pipeline``'s to measure: wall-clock
    throughput on a shared machine is no test."""
    scale = 4 * SCALE
    stage_seconds = [ms * scale / 1000 for ms in PER_VIDEO_MS.values()]
    bound = critical_path_bound(stage_seconds, 4) * 60
    assert bound == pytest.approx(4 / (4 * LATENCY) * 60)


async def test_naive_pipeline_is_the_sequential_baseline(tmp_path: Path) -> None:
    for mode in ("naive", "optimised"):
        recorder = Recorder()
        config = WorkflowConfig(work_dir=tmp_path / mode, **FAST,
                                **({"mode": NAIVE} if mode == "naive" else {}))
        async with connect(f"sqlite:///{tmp_path}/{mode}.db") as db, \
                open_services(sandbox_endpoints(sandbox(2 * SCALE)), cached=mode != "naive",
                              limits=ApiLimits(throttle=False)) as services:
            await run_batch(db, services, IDS[3:4], config)  # warm: the shared audio
            report = await run_batch(db, services, IDS[:3], config, concurrency=3,
                                     recorder=recorder)
        assert report.completed == 3
        assert report.concurrency == (1 if mode == "naive" else 3)
        assert in_flight_peak(recorder.frame("stage")) == report.concurrency
        if mode == "naive":
            assert report.seconds >= 3 * 2 * LATENCY  # one video after another


async def test_progress_bars_and_timelines(db: Database, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    recorder = Recorder()
    config = WorkflowConfig(work_dir=tmp_path / "work", **FAST)
    async with open_services(sandbox_endpoints(build_app(sandbox_config())),
                             limits=ApiLimits()) as services:
        report = await run_batch(db, services, IDS[:3], config, concurrency=2, progress=True,
                                 recorder=recorder)
    assert report.statuses == {"completed": 3}
    bars = capsys.readouterr().err   # not a terminal: one text line, redrawn
    assert "\x1b[" not in bars
    final = bars.split("\r")[-1]
    assert "3/3" in final
    for stage in plan(config):
        assert f"{stage.name} 3" in final

    statuses = await status_timeline(db)
    assert set(statuses["video"]) == set(IDS[:3])
    for _, video in statuses.groupby("video"):
        assert list(video["name"]) == ["pending", "downloading", "transcribing", "analyzing",
                                       "rendering"]
    assert (statuses["seconds"] >= 0).all()
    assert statuses["ok"].all()

    ax = stage_gantt(recorder.frame("stage"))
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == sorted(IDS[:3])
    assert len(ax.patches) == 3 * len(plan(config))
    stage_gantt(statuses, title="Statuses")

    runs = pd.DataFrame([
        {"mode": "optimised", "render": False, "concurrency": c, "videos_per_min": v,
         "bound_per_min": b} for c, v, b in ((1, 14.0, 15.4), (4, 55.0, 61.5))]
        + [{"mode": "naive", "render": False, "concurrency": 1, "videos_per_min": 6.0,
            "bound_per_min": 6.1}])
    assert len(throughput_vs_concurrency(runs).lines) == 2
    assert len(naive_vs_optimised(runs).patches) == 3


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def update(job_id: int, status: str, stage: str | None) -> JobUpdate:
    return {"job_id": job_id, "video_id": None, "youtube_id": None, "kind": "status",
            "status": status, "stage": stage, "progress": 0.0, "attempts": 1, "worker": None,
            "error_code": None, "error_message": None, "at": None}


async def drive(stream: io.StringIO) -> str:
    """Two videos through three stages: one completes, one fails in the last."""
    with StageProgress(2, ["metadata", "download", "analyze"], enabled=True,
                       file=stream) as progress:
        for job_id in (1, 2):
            await progress(update(job_id, "downloading", "download"))
        await progress(update(1, "analyzing", "analyze"))
        await progress(update(1, "completed", None))
        await progress(update(2, "failed", "analyze"))
    return stream.getvalue()


async def test_stage_progress_is_one_text_line_outside_a_terminal() -> None:
    text = await drive(io.StringIO())
    assert "\x1b[" not in text
    assert text.count("\n") == 1
    final = text.split("\r")[-1]
    assert final.startswith("videos: 100%")
    assert "metadata 2, download 2, analyze 1, failed 1" in final


async def test_stage_progress_stacks_a_bar_per_stage_in_a_terminal() -> None:
    text = await drive(Terminal())
    for stage, past in (("metadata", "2/2"), ("download", "2/2"), ("analyze", "1/2")):
        assert f"{stage:<10}:" in text
        assert past in text.split(f"{stage:<10}:")[-1].split("\n")[0]
    assert "\x1b[A" in text   # the cursor moves that stack them
