"""Audio for the transcription tests: stretches of the samples re-encoded, and non-speech."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import imageio_ffmpeg

BITEXACT = ("-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact")
"""No encoder version in the bytes: a cassette recorded with one ffmpeg build matches another's."""
CODECS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"],
    "ogg": ["-c:a", "libopus", "-b:a", "24k", "-f", "ogg"],
    "wav": ["-ar", "22050", "-f", "wav"],
    "m4a": ["-c:a", "aac", "-b:a", "48k", "-movflags", "frag_keyframe+empty_moov", "-f", "mp4"],
}


def ffmpeg(*args: str) -> bytes:
    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", *args,
                           "pipe:1"], capture_output=True, check=True, timeout=60).stdout


@functools.cache
def cut(source: Path, start_s: float, seconds: float, fmt: str = "mp3") -> bytes:
    """``seconds`` of ``source``'s audio from ``start_s``, encoded as ``fmt``."""
    return ffmpeg("-ss", f"{start_s}", "-t", f"{seconds}", "-i", str(source), "-vn", *BITEXACT,
                  *CODECS[fmt])


@functools.cache
def tones(pattern: tuple[tuple[float, float], ...], fmt: str = "mp3") -> bytes:
    """A 440 Hz tone over each (start, end) second span of silence: "speech" nobody said."""
    end = max(stop for _, stop in pattern) + 0.5
    loud = "+".join(f"between(t,{a},{b})" for a, b in pattern)
    return ffmpeg("-f", "lavfi", "-i", f"aevalsrc='0.5*sin(2*PI*440*t)*({loud})':s=16000:d={end}",
                  *CODECS[fmt])
