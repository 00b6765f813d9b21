"""Paths of the sample video in ``data/media/`` (made by ``scripts/make_sample_media.py``)."""

from __future__ import annotations

from pathlib import Path

from opusclip_lib.config import data_dir

SAMPLE_VIDEO_ID = "opusSample1"
SAMPLE_TITLE = "Async Python in Two Minutes"


def sample_video() -> Path:
    return data_dir() / "media" / f"{SAMPLE_VIDEO_ID}.mp4"


def sample_transcript() -> Path:
    return data_dir() / "media" / f"{SAMPLE_VIDEO_ID}.transcript.json"
