"""Simulated Video-OpusClip I/O: ``asyncio.sleep`` stands in for the network and the disk.

The primer and the tests need work that *waits* like real I/O without a server. Latencies
depend on the video id, not on chance, so every run of a notebook tells the same story.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from opusclip_lib.errors import VideoNotFoundError

DELETED_VIDEOS = frozenset({404})
"""Ids whose metadata lookup fails, like a video removed since it was queued."""


@dataclass(frozen=True, slots=True)
class Download:
    video_id: int
    path: str


@dataclass(frozen=True, slots=True)
class Transcript:
    video_id: int
    words: int


@dataclass(frozen=True, slots=True)
class Clip:
    video_id: int
    index: int
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class RenderedClip:
    video_id: int
    index: int
    path: str


def latency_s(video_id: int, base_s: float) -> float:
    """``base_s`` plus 0-40 % depending on the id: varied like a network, the same on every run."""
    return base_s * (1 + (video_id * 7 % 5) / 10)


def _duration_s(video_id: int) -> int:
    return 60 + video_id * 37 % 240


def _id_of(video: Download | int) -> int:
    """Steps accept a bare id too, so they can run on their own as well as after ``download``."""
    return video if isinstance(video, int) else video.video_id


async def fetch_metadata(video_id: int, *, base_s: float = 0.1) -> dict[str, object]:
    """What a video platform's API would answer about one video."""
    if video_id in DELETED_VIDEOS:
        await asyncio.sleep(base_s / 2)  # "not found" comes back faster than a real answer
        raise VideoNotFoundError(f"video {video_id} was deleted")
    await asyncio.sleep(latency_s(video_id, base_s))
    return {"video_id": video_id, "title": f"Episode {video_id}",
            "duration_s": _duration_s(video_id)}


async def download(video_id: int, *, base_s: float = 0.05) -> Download:
    await asyncio.sleep(latency_s(video_id, base_s))
    return Download(video_id, f"videos/{video_id}.mp4")


async def transcribe(video: Download | int, *, base_s: float = 0.15) -> Transcript:
    """The slow step (speech to text), so a pipeline gives it the most workers."""
    video_id = _id_of(video)
    await asyncio.sleep(latency_s(video_id, base_s))
    return Transcript(video_id, words=_duration_s(video_id) * 2)


async def detect_scenes(video: Download | int, *, base_s: float = 0.08) -> list[float]:
    """Scene-cut times in seconds."""
    video_id = _id_of(video)
    await asyncio.sleep(latency_s(video_id, base_s))
    return [float(t) for t in range(0, _duration_s(video_id), 45)]


async def make_thumbnail(video: Download | int, *, base_s: float = 0.04) -> str:
    video_id = _id_of(video)
    await asyncio.sleep(latency_s(video_id, base_s))
    return f"thumbnails/{video_id}.jpg"


async def find_highlights(transcript: Transcript, *, base_s: float = 0.02) -> list[Clip]:
    """One transcript becomes one to three clip candidates (a fan-out stage)."""
    await asyncio.sleep(latency_s(transcript.video_id, base_s))
    count = 1 + transcript.video_id % 3
    return [Clip(transcript.video_id, index, start_s=20.0 * index, end_s=20.0 * index + 15)
            for index in range(count)]


async def render(clip: Clip, *, base_s: float = 0.05) -> RenderedClip:
    await asyncio.sleep(latency_s(clip.video_id, base_s))
    return RenderedClip(clip.video_id, clip.index, f"clips/{clip.video_id}-{clip.index}.mp4")


def encode_frames(video_id: int, frames: int = 2_000_000) -> int:
    """CPU-bound stand-in for encoding: pure-Python arithmetic that holds the GIL the whole
    time, like parsing a large response or resizing an image in Python would. Returns a
    checksum so the work cannot be skipped. Module-level, so a process pool can pickle it."""
    checksum = video_id
    for frame in range(frames):
        checksum = (checksum * 31 + frame) % 1_000_003
    return checksum
