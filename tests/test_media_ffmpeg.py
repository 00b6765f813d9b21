"""The ffmpeg runner: progress, cancellation, failures, atomic outputs and the concurrency limit."""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import suppress
from pathlib import Path

import psutil
import pytest

from opusclip_lib.media import (
    FFmpegError,
    Progress,
    atomic_output,
    cpu_slots,
    default_limiter,
    ffmpeg_filters,
    probe,
    render_clip,
    run_ffmpeg,
    sample_video,
)
from opusclip_lib.media.ffmpeg import spawn


def _test_pattern(seconds: float, size: str = "640x360") -> list[str]:
    """Encode a test pattern read at its own pace (``-re``): the run lasts ``seconds``, whatever
    the machine's speed, long enough to report progress and to be seen running."""
    return ["-re", "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast"]


def _ffmpeg_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        with suppress(psutil.NoSuchProcess):  # it may exit between listing and naming
            if "ffmpeg" in child.name():
                found.append(child)
    return found


async def test_progress_increases_and_ends_done(tmp_path: Path) -> None:
    seen: list[Progress] = []
    with atomic_output(tmp_path / "pattern.mp4") as temp:
        await run_ffmpeg(_test_pattern(1.5), output=temp, duration_s=1.5, on_progress=seen.append)

    assert len(seen) >= 2
    assert [p.seconds for p in seen] == sorted(p.seconds for p in seen)
    assert [p.done for p in seen] == [False] * (len(seen) - 1) + [True]
    assert seen[-1].fraction == 1.0
    assert seen[-1].seconds == pytest.approx(1.5, abs=0.1)
    assert all(0 <= p.fraction <= 1 for p in seen)
    assert (tmp_path / "pattern.mp4").stat().st_size > 0


async def test_async_progress_callback_is_awaited(tmp_path: Path) -> None:
    seen: list[float] = []

    async def record(progress: Progress) -> None:
        await asyncio.sleep(0)
        seen.append(progress.seconds)

    await run_ffmpeg([*_test_pattern(1), "-f", "null", "-"], on_progress=record)
    assert seen
    assert seen[-1] == pytest.approx(1.0, abs=0.1)


async def test_callback_error_surfaces_unwrapped_and_stops_ffmpeg(tmp_path: Path) -> None:
    def fail(progress: Progress) -> None:
        raise LookupError("progress sink is gone")

    with (pytest.raises(LookupError, match="sink is gone"),
          atomic_output(tmp_path / "x.mp4") as temp):
        await run_ffmpeg(_test_pattern(20), output=temp, on_progress=fail)
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - a test's look at its own files
    assert _ffmpeg_children() == []


async def test_cancel_mid_render_kills_ffmpeg_and_leaves_no_file(tmp_path: Path) -> None:
    started = asyncio.Event()
    render = asyncio.create_task(render_clip(
        sample_video(), tmp_path / "clip.mp4", 0, 60, preset="medium",
        on_progress=lambda progress: started.set(),
    ))
    await asyncio.wait_for(started.wait(), 10)
    (child,) = _ffmpeg_children()
    assert child.is_running()
    assert list(tmp_path.glob(".clip.*.part.mp4"))  # noqa: ASYNC240 - a test's look at its own files

    render.cancel()
    with pytest.raises(asyncio.CancelledError):
        await render

    assert not psutil.pid_exists(child.pid)  # terminated and reaped: not even a zombie
    assert _ffmpeg_children() == []
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - a test's look at its own files


async def test_process_ignoring_terminate_is_killed_after_grace_period() -> None:
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                "signal.SIG_IGN); print('ready', flush=True); time.sleep(30)"]
    began = time.perf_counter()
    async with spawn(stubborn, grace_s=0.3) as process:
        assert process.stdout is not None
        await process.stdout.readline()
    assert process.returncode == -9
    assert time.perf_counter() - began >= 0.3  # the grace period, then the kill (-9)
    assert not psutil.pid_exists(process.pid)


async def test_corrupt_input_raises_typed_error_with_stderr_tail(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"definitely not a video " * 200)
    with pytest.raises(FFmpegError) as failure, atomic_output(tmp_path / "out.mp4") as temp:
        await run_ffmpeg(["-i", corrupt, "-c", "copy"], output=temp)
    assert failure.value.returncode not in (0, None)
    assert "Invalid data found" in failure.value.stderr_tail
    assert len(failure.value.stderr_tail.splitlines()) <= 20
    assert [p.name for p in tmp_path.iterdir()] == ["corrupt.mp4"]  # noqa: ASYNC240 - a test's look at its own files

    with pytest.raises(FFmpegError, match="Invalid data found"):
        await probe(corrupt)


async def test_truncated_input_fails_render_and_leaves_no_output(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(sample_video().read_bytes()[:60_000])
    with pytest.raises(FFmpegError):
        await render_clip(truncated, tmp_path / "clip.mp4", 0, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["truncated.mp4"]  # noqa: ASYNC240 - a test's look at its own files


@pytest.mark.parametrize("injected", [True, False], ids=["injected", "default-per-core"])
async def test_concurrency_never_exceeds_the_limit(injected: bool) -> None:
    limit = 2 if injected else cpu_slots()
    limiter = asyncio.Semaphore(limit) if injected else None
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, len(_ffmpeg_children()))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(
            run_ffmpeg([*_test_pattern(0.5, "320x180"), "-f", "null", "-"], limiter=limiter)
            for _ in range(limit + 3)
        ))
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
    assert peak == limit
    assert default_limiter() is default_limiter()  # one shared limit per event loop


async def test_bundled_ffmpeg_has_the_filters_we_rely_on() -> None:
    assert {"subtitles", "drawtext", "overlay", "boxblur", "showvolume"} <= await ffmpeg_filters()
