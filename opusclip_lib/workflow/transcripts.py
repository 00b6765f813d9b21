"""Transcripts without a speech-to-text service: the sample's real one, or a deterministic stand-in.

Only ``opusSample1`` has real speech (``data/media``). Every other catalogue video is rendered
from that same sample media (:func:`opusclip_lib.workflow.config.sample_source`), so its
stand-in transcript keeps the sample's timing, every sentence and word where the sample speaks,
and swaps the words for ones drawn from the video's own title, description and tags with an RNG
seeded by its id. Each video so gets its own text (its own highlight request, its own titles),
the same on every run, and captions that appear while someone is speaking in the picture.
"""

from __future__ import annotations

import random
import re
from functools import cache

from opusclip_lib.db.models import Video
from opusclip_lib.media import (
    SAMPLE_VIDEO_ID,
    Segment,
    Transcript,
    Word,
    load_transcript,
    sample_transcript,
)

WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
MIN_VOCABULARY = 5


@cache
def _sample() -> Transcript:
    return load_transcript(sample_transcript())


def vocabulary(video: Video) -> list[str]:
    """The video's own words (title, description, tags), or the sample's when it has too few."""
    metadata = video.metadata if isinstance(video.metadata, dict) else {}
    text = " ".join([video.title or "", str(metadata.get("description", "")),
                     *map(str, metadata.get("tags", []))])
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(text)))
    if len(words) >= MIN_VOCABULARY:
        return words
    return list(dict.fromkeys(w.text.strip(".,!?").lower() for w in _sample().words))


def transcript_for(video: Video) -> Transcript:
    """The real transcript of the sample video; a seeded stand-in on its timing for any other."""
    sample = _sample()
    if video.youtube_id == SAMPLE_VIDEO_ID:
        return sample
    rng = random.Random(video.youtube_id)
    words = vocabulary(video)
    segments = []
    for segment in sample.segments:
        texts = [rng.choice(words) for _ in segment.words]
        texts[0] = texts[0].capitalize()
        texts[-1] += "."
        timed = tuple(Word(start=w.start, end=w.end, text=text)
                      for w, text in zip(segment.words, texts, strict=True))
        segments.append(Segment(id=segment.id, start=segment.start, end=segment.end,
                                text=" ".join(texts), words=timed))
    return Transcript(video_id=video.youtube_id, title=video.title or video.youtube_id,
                      language=sample.language, duration=sample.duration,
                      segments=tuple(segments))
