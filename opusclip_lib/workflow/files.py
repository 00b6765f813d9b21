"""Where a video's artifacts live, and writes that never leave a half file under a final name.

::

    <work_dir>/videos/<youtube_id>/
        metadata.json           YouTube's answer, the page's or the file's (metadata stage)
        download/               yt-dlp's working folder, its ``.part`` file resumable
        source.mp4              the media: downloaded, or a link to a local file (download)
        chunks/                 the audio cut at silences, while transcribing in several
        transcript.json         (transcribe stage)
        highlights.json         the LLM's picks as it returned them (analyze stage)
        clips/<id>.mp4          9:16 render (render stage; ``id`` is the clip row's id)
        clips/<id>.png          Stability thumbnail (thumbnail stage)
        clips/<id>.voice.wav    ElevenLabs speech (voiceover stage)
        clips/<id>.voiced.mp4   the render with the speech as its sound (voiceover, when rendering)

Shared by all videos, keyed by content hash (one extraction and one transcription per distinct
media, however many videos have it)::

    <work_dir>/audio/<media sha256>.ogg          speech audio, compact (transcribe stage;
                                                 its temporary file in the video's folder)
    <work_dir>/transcripts/<audio sha256>.json   the transcript
    <work_dir>/transcripts/chunks/<sha256>.json  each chunk's answer

Every file is written under a hidden temporary name in its own folder and renamed into place
when complete (:func:`opusclip_lib.media.atomic_output`), so a final name always means a whole
file; a render's scratch files (captions) live in a hidden folder beside its clip, never in
``/tmp``. A process killed mid-write leaves the hidden files behind; the next worker to claim
the video deletes those (:func:`clean_partials`) first: it then holds the job's lease, so no
live writer can own them.
"""

from __future__ import annotations

import json
import os
import shutil
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opusclip_lib.media import atomic_output

PARTIAL = ".*.part*"
"""The hidden names :func:`opusclip_lib.media.atomic_output` writes to, and the scratch folders
:func:`opusclip_lib.media.render_clip` keeps beside a clip while it renders."""


@dataclass(frozen=True, slots=True)
class ClipFiles:
    video: Path
    thumbnail: Path
    voice: Path
    voiced: Path


@dataclass(frozen=True, slots=True)
class VideoFiles:
    folder: Path

    @classmethod
    def of(cls, root: Path, youtube_id: str) -> VideoFiles:
        return cls(root / "videos" / youtube_id)

    @property
    def metadata(self) -> Path:
        return self.folder / "metadata.json"

    @property
    def source(self) -> Path:
        return self.folder / "source.mp4"

    @property
    def downloads(self) -> Path:
        return self.folder / "download"

    @property
    def transcript(self) -> Path:
        return self.folder / "transcript.json"

    @property
    def highlights(self) -> Path:
        return self.folder / "highlights.json"

    def clip(self, clip_id: int) -> ClipFiles:
        clips = self.folder / "clips"
        return ClipFiles(video=clips / f"{clip_id}.mp4", thumbnail=clips / f"{clip_id}.png",
                         voice=clips / f"{clip_id}.voice.wav",
                         voiced=clips / f"{clip_id}.voiced.mp4")


def clean_partials(folder: Path) -> list[Path]:
    """Delete the hidden temporary files (and a render's scratch folders) a killed writer left
    under ``folder``; return them."""
    found = sorted(folder.rglob(PARTIAL)) if folder.exists() else []
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found


# Small files are written synchronously: a worker thread would cost more than the write, and one
# still running after a cancellation could recreate a temp file the clean-up just removed.

def write_bytes(path: Path, data: bytes) -> Path:
    with atomic_output(path) as temp:
        temp.write_bytes(data)
    return path


def write_json(path: Path, value: Any) -> Path:
    return write_bytes(path, json.dumps(value, indent=1).encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())


def write_wav(path: Path, pcm: bytes, sample_rate: int) -> Path:
    """16-bit mono PCM in a WAV header, which ffmpeg reads without being told the format."""
    with atomic_output(path) as temp, wave.open(str(temp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return path


def link(target: Path, path: Path) -> Path:
    with atomic_output(path) as temp:
        os.symlink(target.resolve(), temp)
    return path
