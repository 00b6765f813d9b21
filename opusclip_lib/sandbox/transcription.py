"""What the fake Whisper hears: a sample's true words, or stand-in words on the voiced spans.

Audio recognised by :mod:`.fingerprint` as (a stretch of) a bundled sample gets that sample's
transcript for the time range it covers, re-timed to the upload. Any other audio gets a
deterministic stand-in: its words sit on the stretches where the audio is loud enough to be
speech, and they say what they are ("This is a sandbox stand-in transcript, ..."), so nobody
mistakes them for recognised speech. The ``x-sandbox-transcript`` response header says the same
(``opusSample1@37.23`` or ``stand-in``).
"""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass
from itertools import cycle, islice
from pathlib import Path

import numpy as np

from opusclip_lib.media.samples import SAMPLE_TITLES, sample_transcript, sample_video
from opusclip_lib.media.transcript import Transcript, load_transcript
from opusclip_lib.sandbox.fingerprint import (
    SAMPLE_RATE,
    envelope,
    identify,
    reference_envelope,
    voiced_spans,
)

STAND_IN_SENTENCES = (
    "This is a sandbox stand-in transcript, not the words spoken here.",
    "The sandbox only recognises its bundled sample videos.",
    "Each stand-in line sits where the audio sounds like speech.",
    "Send this audio to the real endpoint to hear what was said.",
)
STAND_IN_SECONDS_PER_WORD = 0.35
STAND_IN = "stand-in"
PUNCTUATION = re.compile(r"^[^\w']+|[^\w']+$")


@dataclass(frozen=True, slots=True)
class HeardWord:
    """A word as Whisper reports it: no punctuation; times in seconds of the upload."""

    word: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class HeardSegment:
    start: float
    end: float
    text: str
    words: tuple[HeardWord, ...]


@dataclass(frozen=True, slots=True)
class Heard:
    """Everything a response format needs; ``source`` names the sample and offset, or stand-in.
    """

    duration_s: float
    segments: tuple[HeardSegment, ...]
    source: str

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)

    @property
    def words(self) -> list[HeardWord]:
        return [word for segment in self.segments for word in segment.words]


def _sample_transcripts() -> dict[str, tuple[Path, Transcript]]:
    """The bundled samples present on disk (a checkout may predate the second one)."""
    return {name: (sample_video(name), _load(sample_transcript(name)))
            for name in SAMPLE_TITLES if sample_video(name).is_file()}


@functools.cache
def _load(path: Path) -> Transcript:
    return load_transcript(path)


async def hear(pcm: np.ndarray) -> Heard:
    """The transcript for decoded 16 kHz mono samples (see :func:`.fingerprint.decode`)."""
    loudness = envelope(pcm)
    duration_s = round(len(pcm) / SAMPLE_RATE, 3)
    known = _sample_transcripts()
    references = {name: await reference_envelope(video) for name, (video, _) in known.items()}
    match = await asyncio.to_thread(identify, loudness, references)  # keep the server answering
    if match is None:
        return stand_in(voiced_spans(loudness), duration_s)
    return excerpt(known[match.name][1], match.offset_s, duration_s,
                   source=f"{match.name}@{match.offset_s:.2f}")


def excerpt(transcript: Transcript, offset_s: float, duration_s: float, *, source: str) -> Heard:
    """The words whose middle lies in ``[offset_s, offset_s + duration_s)``, timed from the offset.
    """
    segments = []
    for segment in transcript.segments:
        kept = [w for w in segment.words if offset_s <= w.middle < offset_s + duration_s]
        if kept:
            words = tuple(HeardWord(_bare(w.text), _clamp(w.start - offset_s, duration_s),
                                    _clamp(w.end - offset_s, duration_s)) for w in kept)
            segments.append(HeardSegment(words[0].start, words[-1].end,
                                         " ".join(w.text for w in kept), words))
    return Heard(duration_s, tuple(segments), source)


def stand_in(spans: list[tuple[float, float]], duration_s: float) -> Heard:
    """Stand-in words spread evenly over each voiced span, from a fixed script that says what it
    is and always starts at its first sentence: the same audio always gets the same answer."""
    script = [word for sentence in STAND_IN_SENTENCES for word in sentence.split()]
    words_left = cycle(script)
    segments = []
    for start, end in spans:
        count = max(1, round((end - start) / STAND_IN_SECONDS_PER_WORD))
        texts = list(islice(words_left, count))
        step = (end - start) / count
        words = tuple(HeardWord(_bare(text), round(start + n * step, 3),
                                round(start + (n + 1) * step, 3))
                      for n, text in enumerate(texts))
        segments.append(HeardSegment(words[0].start, words[-1].end, " ".join(texts), words))
    return Heard(duration_s, tuple(segments), STAND_IN)


def _bare(text: str) -> str:
    return PUNCTUATION.sub("", text) or text


def _clamp(seconds: float, duration_s: float) -> float:
    return round(min(max(seconds, 0.0), duration_s), 3)

