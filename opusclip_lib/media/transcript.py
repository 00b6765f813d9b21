"""Word-timed transcripts: load one, pick the words of a time window, group them into captions.

The JSON shape is Whisper's ``verbose_json`` trimmed to what clipping needs: segments (one
sentence each) holding words, every one with ``start``/``end`` in seconds of the source video.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

SENTENCE_END = (".", "!", "?")


class Word(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    text: str

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


class Segment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...]


class Transcript(BaseModel):
    model_config = ConfigDict(frozen=True)

    video_id: str
    title: str
    language: str = "en"
    duration: float
    segments: tuple[Segment, ...]

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]

    def words_between(self, start: float, end: float) -> list[Word]:
        """Words whose middle lies in ``[start, end)``.

        The middle, not any overlap, decides: so back-to-back windows share no word, and a word
        cut in half by a window edge belongs to the side that holds most of it.
        """
        return [word for word in self.words if start <= word.middle < end]

    def text_between(self, start: float, end: float) -> str:
        return " ".join(word.text for word in self.words_between(start, end))


def load_transcript(path: str | os.PathLike[str]) -> Transcript:
    return Transcript.model_validate_json(Path(path).read_bytes())


class Caption(BaseModel):
    """A few words shown together; times are relative to the clip, not the source."""

    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)


def _shift(word: Word, offset: float, limit: float) -> Word:
    return Word(start=min(max(word.start - offset, 0.0), limit),
                end=min(max(word.end - offset, 0.0), limit), text=word.text)


def build_captions(
    words: Sequence[Word],
    *,
    clip_start: float = 0.0,
    clip_end: float | None = None,
    max_words: int = 4,
    max_chars: int = 16,
    max_gap: float = 0.6,
) -> list[Caption]:
    """Group ``words`` (source times) into short captions timed relative to ``clip_start``.

    A caption ends at ``max_words`` or ``max_chars`` (short lines read well on a phone), at the
    end of a sentence, or before a pause longer than ``max_gap``. Each caption stays up until the
    next one starts when the pause between them is shorter than ``max_gap``, so the text does
    not flicker between words. Times are clamped to the clip.
    """
    limit = (clip_end if clip_end is not None else float("inf")) - clip_start
    groups: list[list[Word]] = []
    for word in sorted(words, key=lambda w: w.start):
        shifted = _shift(word, clip_start, limit)
        current = groups[-1] if groups else None
        if current is None or not _fits(current, shifted, max_words, max_chars, max_gap):
            groups.append([shifted])
        else:
            current.append(shifted)
    captions = []
    for index, group in enumerate(groups):
        end = group[-1].end
        if index + 1 < len(groups) and groups[index + 1][0].start - end < max_gap:
            end = groups[index + 1][0].start
        if end > group[0].start:
            captions.append(Caption(start=group[0].start, end=end, words=tuple(group)))
    return captions


def _fits(group: list[Word], word: Word, max_words: int, max_chars: int, max_gap: float) -> bool:
    chars = sum(len(w.text) + 1 for w in group) + len(word.text)
    return (
        len(group) < max_words
        and chars <= max_chars
        and not group[-1].text.endswith(SENTENCE_END)
        and word.start - group[-1].end <= max_gap
    )
