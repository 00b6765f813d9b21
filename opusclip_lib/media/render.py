"""Turn a time window of a long landscape video into a short vertical clip.

Reframing defaults to ``"pad"``: the whole 16:9 picture, scaled to the clip's width, over a
blurred, zoomed copy of itself filling the 9:16 frame. A talk or screencast carries information
across its full width (slides, code, on-screen text) that a centre crop would cut off; ``"crop"``
(fill the frame, lose the sides) suits a single speaker in the middle of the shot.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from opusclip_lib.errors import OpusClipError
from opusclip_lib.media.captions import write_caption_files
from opusclip_lib.media.ffmpeg import (
    FFmpegError,
    ProgressCallback,
    atomic_output,
    ffmpeg_filters,
    run_ffmpeg,
)
from opusclip_lib.media.probe import probe
from opusclip_lib.media.transcript import Transcript, build_captions

Reframe = Literal["pad", "crop"]
VERTICAL = (360, 640)
DURATION_TOLERANCE_S = 0.1
SCRATCH_SUFFIX = ".part-render"
"""Ends the name of the hidden scratch folder a render keeps beside its clip."""


class ClipOutOfRangeError(OpusClipError, ValueError):
    """The asked span is empty, negative, or reaches past the end of the source media (a
    highlight picked from a transcript longer than the video, a video shorter than a clip)."""


@dataclass(frozen=True, slots=True)
class RenderedClip:
    path: Path
    start: float
    end: float
    duration_s: float
    width: int
    height: int
    captions: int


def _reframe_filter(width: int, height: int, reframe: Reframe) -> str:
    """Filter graph from ``[0:v]`` to a ``width`` x ``height`` picture (no output label)."""
    if reframe == "crop":
        return (f"[0:v]scale={width}:{height}:force_original_aspect_ratio=increase,"
                f"crop={width}:{height},setsar=1")
    # The background is blurred at a quarter of the size and scaled back up: the same look as a
    # full-size blur for a fraction of the CPU.
    small_w, small_h = width // 4, height // 4
    return (
        "[0:v]split=2[bg][fg];"
        f"[bg]scale={small_w}:{small_h}:force_original_aspect_ratio=increase,"
        f"crop={small_w}:{small_h},boxblur=4:2,scale={width}:{height}[back];"
        f"[fg]scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2[front];"
        "[back][front]overlay=(W-w)/2:(H-h)/2,setsar=1"
    )


async def render_clip(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    start: float,
    end: float,
    *,
    transcript: Transcript | None = None,
    size: tuple[int, int] = VERTICAL,
    reframe: Reframe = "pad",
    preset: str = "veryfast",
    crf: int = 23,
    on_progress: ProgressCallback | None = None,
    limiter: asyncio.Semaphore | None = None,
) -> RenderedClip:
    """Cut ``[start, end]`` of ``source`` into a vertical MP4 at ``dest``.

    With a ``transcript``, its words in the window are burned in as captions. The output is
    probed before it is moved into place: a duration off by more than 0.1 s or a wrong size
    raises :class:`FFmpegError` and leaves nothing at ``dest``. A span outside the source raises
    :class:`ClipOutOfRangeError` before ffmpeg runs.
    """
    if not 0 <= start < end:
        raise ClipOutOfRangeError(f"need 0 <= start < end, got start={start} end={end}")
    source = Path(source).resolve()  # noqa: ASYNC240 - a few stats, not worth a thread
    info = await probe(source)
    if info.duration_s is not None and end > info.duration_s + DURATION_TOLERANCE_S:
        raise ClipOutOfRangeError(f"clip end {end:g} s is past the end of {source.name} "
                                  f"({info.duration_s:.2f} s)")
    width, height = size
    duration_s = end - start
    graph = _reframe_filter(width, height, reframe)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Scratch (caption files) beside the clip, hidden and named like atomic_output's temp files:
    # a process killed mid-render leaves it where the next run's clean-up looks, never in /tmp.
    with tempfile.TemporaryDirectory(prefix=f".{dest.stem}.", suffix=SCRATCH_SUFFIX,
                                     dir=dest.parent) as workdir:
        caption_count = 0
        if transcript is not None:
            if "subtitles" not in await ffmpeg_filters():
                raise RuntimeError("this ffmpeg build lacks libass's 'subtitles' filter")
            captions = build_captions(transcript.words_between(start, end),
                                      clip_start=start, clip_end=end)
            script = write_caption_files(captions, workdir, width=width, height=height)
            graph += f",subtitles=filename={script.name}:fontsdir=."
            caption_count = len(captions)
        with atomic_output(dest) as temp:
            await run_ffmpeg(
                ["-ss", f"{start:.3f}", "-i", source, "-t", f"{duration_s:.3f}",
                 "-filter_complex", graph + "[v]", "-map", "[v]", "-map", "0:a?",
                 "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                 "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart"],
                output=temp.resolve(), duration_s=duration_s, on_progress=on_progress,
                limiter=limiter, cwd=workdir,
            )
            rendered = await probe(temp)
            _verify(rendered.duration_s, rendered.width, rendered.height, duration_s, size)
    return RenderedClip(dest, start, end, rendered.duration_s or 0.0, width, height,
                        caption_count)


def _verify(got_duration_s: float | None, got_width: int | None, got_height: int | None,
            duration_s: float, size: tuple[int, int]) -> None:
    if got_duration_s is None or abs(got_duration_s - duration_s) > DURATION_TOLERANCE_S:
        raise FFmpegError(f"rendered clip lasts {got_duration_s} s, expected {duration_s:.3f} s",
                          returncode=0, stderr_tail="")
    if (got_width, got_height) != size:
        raise FFmpegError(f"rendered clip is {got_width}x{got_height}, expected {size}",
                          returncode=0, stderr_tail="")


async def extract_frame(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    at: float,
    *,
    width: int | None = None,
    limiter: asyncio.Semaphore | None = None,
) -> Path:
    """Save the frame at ``at`` seconds as PNG or JPEG (by ``dest``'s suffix), optionally scaled.

    For thumbnails and for showing a clip inline in a notebook (``IPython.display.Image``).
    """
    args: list[str | os.PathLike[str]] = ["-ss", f"{at:.3f}", "-i", source, "-frames:v", "1"]
    if width is not None:
        args += ["-vf", f"scale={width}:-2"]
    if Path(dest).suffix.lower() in {".jpg", ".jpeg"}:
        args += ["-q:v", "3"]
    with atomic_output(dest) as temp:
        await run_ffmpeg([*args, "-update", "1"], output=temp, limiter=limiter)
    return Path(dest)


async def mux_voiceover(
    video: str | os.PathLike[str],
    audio: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    limiter: asyncio.Semaphore | None = None,
) -> Path:
    """Replace ``video``'s sound with ``audio``; the picture is copied, not re-encoded.

    The voice-over is padded with silence (or cut) to the video's length, so the clip keeps
    its duration whatever the length of the recording.
    """
    with atomic_output(dest) as temp:
        await run_ffmpeg(
            ["-i", video, "-i", audio, "-map", "0:v", "-map", "1:a", "-c:v", "copy",
             "-af", "apad", "-c:a", "aac", "-b:a", "96k", "-shortest", "-movflags", "+faststart"],
            output=temp, limiter=limiter,
        )
    return Path(dest)
