"""What is in a media file, read from the header ``ffmpeg -i`` prints.

imageio-ffmpeg ships no ffprobe. ``ffmpeg -i FILE`` with no output reads only the container
header (milliseconds, whatever the file's length) and prints duration and streams before it
exits complaining that no output was given; decoding the whole file (``count_frames_and_secs``,
``-f null -``) would be exact to the frame but scales with the file. The header's centisecond
duration is precise enough to verify a cut to 0.1 s.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from opusclip_lib.media.ffmpeg import STDERR_TAIL_LINES, FFmpegError, ffmpeg_exe, spawn

_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+: Video: .*?(\d{2,5})x(\d{2,5})(?:.*?([\d.]+) fps)?")
_AUDIO = re.compile(r"Stream #\S+: Audio: ")
_CONTAINER = re.compile(r"Input #0, ([\w,]+), from")
TEXT_CONTAINERS = frozenset({"tty"})
"""What ffmpeg calls a plain text file it opens anyway (as ANSI art)."""


@dataclass(frozen=True, slots=True)
class MediaInfo:
    path: Path
    duration_s: float | None
    width: int | None
    height: int | None
    fps: float | None
    has_audio: bool
    container: str | None = None
    """ffmpeg's demuxer names, e.g. ``mov,mp4,m4a,3gp,3g2,mj2``; ``tty`` for a text file."""

    @property
    def is_text(self) -> bool:
        return self.container in TEXT_CONTAINERS


def parse_probe(path: Path, report: str, returncode: int | None = None) -> MediaInfo:
    """Read a :class:`MediaInfo` out of ``ffmpeg -i`` stderr; raise if no input was opened."""
    if "Input #0" not in report:
        tail = "\n".join(report.strip().splitlines()[-STDERR_TAIL_LINES:])
        raise FFmpegError(f"cannot read media file {path}", returncode=returncode, stderr_tail=tail)
    duration_s = None
    if match := _DURATION.search(report):
        hours, minutes, seconds = match.groups()
        duration_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    width = height = None
    fps = None
    if video := _VIDEO.search(report):
        width, height = int(video.group(1)), int(video.group(2))
        fps = float(video.group(3)) if video.group(3) else None
    container = match.group(1) if (match := _CONTAINER.search(report)) else None
    return MediaInfo(path, duration_s, width, height, fps, bool(_AUDIO.search(report)), container)


async def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Duration, video size, frame rate and audio presence of ``path``.

    Raises :class:`FFmpegError` (with ffmpeg's explanation) for a missing or corrupt file.
    Not limited by the CPU semaphore: reading a header costs no CPU worth queueing for.
    """
    path = Path(path)
    async with spawn([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", os.fspath(path)]) as process:
        _, report = await process.communicate()
    return parse_probe(path, report.decode(errors="replace"), process.returncode)
