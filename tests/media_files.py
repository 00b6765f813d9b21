"""Small media files that break the workflow in one particular way each."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import imageio_ffmpeg


def _ffmpeg(dest: Path, *args: str) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", *args, "-y",
                    str(dest)], check=True, timeout=60)
    return dest


def silent_video(dest: Path, seconds: float = 2.0) -> Path:
    """A black picture with a silent sound track: media, but nobody speaks."""
    return _ffmpeg(dest, "-f", "lavfi", "-i", f"color=c=black:s=64x64:d={seconds}", "-f",
                   "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", f"{seconds}",
                   "-c:v", "libx264", "-c:a", "aac", "-shortest")


def mute_video(dest: Path, seconds: float = 2.0) -> Path:
    """A video with no audio track at all."""
    return _ffmpeg(dest, "-f", "lavfi", "-i", f"color=c=blue:s=64x64:d={seconds}",
                   "-c:v", "libx264")


def corrupt_mp4(dest: Path) -> Path:
    """An mp4 header followed by noise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    return dest
