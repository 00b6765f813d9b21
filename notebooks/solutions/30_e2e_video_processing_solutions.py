"""Solutions to the exercises of notebooks/30_e2e_video_processing.ipynb.

Run: .venv/bin/python notebooks/solutions/30_e2e_video_processing_solutions.py
Like the notebook, it uses ``OPUSCLIP_DATABASE_URL`` (default: the SQLite file in work/), starts
from an empty schema and writes its files under work/30_e2e_video_processing_solutions/. A script
starts its own event loop with asyncio.run(); in a notebook, paste the body of a function into a
cell and ``await`` it instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from opusclip_lib import config
from opusclip_lib.db import Database, clips, connect, jobs, reset, videos
from opusclip_lib.metrics import Recorder
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.endpoints import LATENCY_PROFILE_MS, sandbox_endpoints
from opusclip_lib.workflow import (
    JobUpdate,
    Services,
    VideoFiles,
    WorkflowConfig,
    open_services,
    run_video,
)

WORK = config.work_dir() / "30_e2e_video_processing_solutions"
WORKFLOW = WorkflowConfig(work_dir=WORK, clips=3, max_clip_s=4.0)
RESUME = replace(WORKFLOW, heartbeat_s=0.3, stale_after_s=1.0)


def calls_made(services: Services) -> dict[str, int]:
    return {provider: usage.calls for provider, usage in services.usage().items()}


def difference(after: dict[str, int], before: dict[str, int]) -> str:
    return ", ".join(f"{provider} {after[provider] - before[provider]}" for provider in after)


async def exercise_1_crash_later(db: Database, services: Services) -> None:
    """Kill the worker in the thumbnail stage: the renders are committed, the thumbnails not."""
    youtube_id = "y4SXvE9rwLb"
    command = [sys.executable, "-m", "opusclip_lib.workflow.worker", "--database-url",
               config.database_url(), "--work-dir", str(WORK), "--videos", youtube_id,
               "--clips", "3", "--max-clip-seconds", "4", "--latency", "stability=10000"]
    worker = await asyncio.create_subprocess_exec(*command, start_new_session=True,
                                                  stdout=asyncio.subprocess.DEVNULL,
                                                  stderr=asyncio.subprocess.DEVNULL)
    try:
        while True:
            video = await videos.find_video(db, youtube_id)
            found = await jobs.list_jobs(db, video_id=video.id) if video else []
            if found and found[0].stage == "thumbnail":
                break
            if worker.returncode is not None:
                raise RuntimeError("the worker exited before the thumbnail stage")
            await asyncio.sleep(0.02)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        await worker.wait()
    assert video is not None
    rendered = await clips.list_clips(db, video.id)
    renders = {clip.id: Path(clip.clip_path).stat().st_mtime_ns for clip in rendered}
    files = VideoFiles.of(WORK, youtube_id)  # the early requests beside the render left these:
    kept = {"stability": sum(files.clip(clip.id).thumbnail.exists() for clip in rendered),
            "elevenlabs": sum(files.clip(clip.id).voice.exists() for clip in rendered)}
    before = calls_made(services)
    job = await run_video(db, services, youtube_id, RESUME)
    after = calls_made(services)
    redone = sum(Path(clip.clip_path).stat().st_mtime_ns != renders[clip.id]
                 for clip in await clips.list_clips(db, video.id))
    made = {provider: after[provider] - before[provider] for provider in after}
    assert (made["youtube"], made["openai"], redone) == (0, 0, 0)
    assert all(made[provider] == len(renders) - kept[provider] for provider in kept)
    print(f"1. killed in 'thumbnail'; resumed: {job.status} on attempt {job.attempts}")
    print(f"   calls the resume made: {difference(after, before)}; renders redone: {redone} "
          f"of {len(renders)}")
    print("   prediction: no YouTube or OpenAI call, no render (rows + files say done), and a "
          "thumbnail and a voice-over for each clip whose file was not on disk at the kill (the "
          f"killed worker asked for them beside its render: it had finished {kept['stability']} "
          f"thumbnail(s) and {kept['elevenlabs']} speech file(s))")


async def exercise_2_flaky_provider(db: Database, sandbox: SandboxConfig,
                                    services: Services) -> None:
    """A few errors are absorbed by the client's retries; many end the job, with the reason."""
    sandbox.inject("stability.generate", "server_error", times=2)
    failures_before = services.usage()["stability"].failures
    job = await run_video(db, services, "cpCGybY9lMR", WORKFLOW)
    print(f"2a. two 500s: job {job.status} on attempt {job.attempts}; stability failures seen "
          f"by the client: {services.usage()['stability'].failures - failures_before} (its "
          "retry policy absorbed them, the job never noticed)")
    sandbox.clear_faults()
    sandbox.inject("stability.generate", "server_error", times=50)
    try:
        job = await run_video(db, services, "PixOqoRGrB5", replace(WORKFLOW, retry_backoff_s=0.1))
    finally:
        sandbox.clear_faults()
    print(f"2b. fifty 500s: job {job.status} after {job.attempts} attempts, "
          f"error_code {job.error_code!r}")
    print(f"    error_message {job.error_message!r}")
    outcome = ("out of attempts, the job failed with the stage and the reason"
               if job.status == "failed" else
               "the 50 errors ran out before the attempts did, so the job completed; its "
               "error_code and error_message keep the last failure")
    print("    the client retried each call, then its breaker opened after 5 failures; a job "
          "whose calls the open breaker refused went back to pending without spending an "
          "attempt, an attempt whose call reached Stability and failed was spent; " + outcome)


async def exercise_3_status_line(db: Database, services: Services) -> None:
    """A hook that draws one line per committed change."""
    width = 7

    async def status_line(update: JobUpdate) -> None:
        done = round(update["progress"] * width)
        print(f"   {update['youtube_id']:<12} {'■' * done}{'□' * (width - done)} "
              f"{update['stage'] or update['status']}")

    print("3. a status line per update:")
    await run_video(db, services, "qY6K1Qjah4d", replace(WORKFLOW, render=False),
                    on_change=status_line)


async def exercise_4_longer_clips(db: Database, services: Services) -> None:
    """Render time follows the seconds of video to encode, spread over the cores."""
    for youtube_id, clip_count, seconds in (("fqRgz7IhYeP", 3, 4.0), ("7-dUM2jNKog", 5, 8.0)):
        recorder = Recorder()
        await run_video(db, services, youtube_id,
                        replace(WORKFLOW, clips=clip_count, max_clip_s=seconds),
                        recorder=recorder)
        video = await videos.find_video(db, youtube_id)
        assert video is not None
        made = await clips.list_clips(db, video.id)
        total = sum(clip.end_s - clip.start_s for clip in made)
        render_s = recorder.frame("stage").query("name == 'render'").seconds.sum()
        print(f"4. {len(made)} clips, {total:.1f} s of video: render stage {render_s:.2f} s "
              f"({render_s / total:.2f} s per second of video)")
    print("   the clips render side by side, but ffmpeg is CPU-bound and default_limiter runs one "
          "per core: the time follows the seconds to encode divided by the cores, not the count")


async def main() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    sandbox = SandboxConfig()
    for endpoint, ms in LATENCY_PROFILE_MS.items():
        sandbox.set_latency(endpoint, ms * 0.1)
    app = build_app(sandbox)
    async with connect(config.database_url()) as db:
        await reset(db)
        # Fresh clients per exercise: exercise 2 leaves Stability's circuit breaker open.
        async with open_services(sandbox_endpoints(app)) as services:
            await exercise_1_crash_later(db, services)
        # a 0.5 s cool-down: a job deferred by the open breaker comes back within seconds
        async with open_services(sandbox_endpoints(app), cool_down_s=0.5) as services:
            await exercise_2_flaky_provider(db, sandbox, services)
        async with open_services(sandbox_endpoints(app)) as services:
            await exercise_3_status_line(db, services)
        async with open_services(sandbox_endpoints(app)) as services:
            await exercise_4_longer_clips(db, services)


if __name__ == "__main__":
    asyncio.run(main())
