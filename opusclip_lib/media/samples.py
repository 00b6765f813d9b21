"""Paths of the sample videos in ``opusclip_lib/data/media/`` (made by
``scripts/make_sample_media.py``).

``opusSample1`` is the talk every notebook uses; ``opusSample2`` says different things, so a test
can tell one video's transcript from another's. Without an argument the functions give the first.
"""

from __future__ import annotations

from pathlib import Path

from opusclip_lib.config import data_dir

SAMPLE_VIDEO_ID = "opusSample1"
SAMPLE_TITLE = "Async Python in Two Minutes"
SECOND_SAMPLE_VIDEO_ID = "opusSample2"
SECOND_SAMPLE_TITLE = "Cooking Pasta for a Crowd"
SAMPLE_TITLES = {SAMPLE_VIDEO_ID: SAMPLE_TITLE, SECOND_SAMPLE_VIDEO_ID: SECOND_SAMPLE_TITLE}
"""Every bundled sample, by video id."""


def sample_video(video_id: str = SAMPLE_VIDEO_ID) -> Path:
    return data_dir() / "media" / f"{_known(video_id)}.mp4"


def sample_transcript(video_id: str = SAMPLE_VIDEO_ID) -> Path:
    return data_dir() / "media" / f"{_known(video_id)}.transcript.json"


def _known(video_id: str) -> str:
    if video_id not in SAMPLE_TITLES:
        raise ValueError(f"no bundled sample {video_id!r}; the samples are {list(SAMPLE_TITLES)}")
    return video_id
