"""Speech to text for audio of any length: fan the chunks out, fan the words back in.

The transcription endpoint takes at most 25 MB an upload. Longer audio is cut at silences
(:func:`opusclip_lib.media.audio.plan_chunks`), the chunks go out concurrently (at most
``concurrency`` in flight: the provider's limit, not ours, bounds how fast it can go), and each
chunk's words come back timed from *its* start, so fanning in adds the chunk's offset to every
time before the pieces are joined in order. Whisper's words carry no punctuation; its segments
do, so each segment's tokens replace its words' text, and sentences become the transcript's
segments (what captions and highlights work on).

Both levels are cached on disk by audio hash: a chunk transcribed once is never sent again (a
run stopped mid fan-out resumes with the missing chunks only), nor is a whole file. Given an
artifact :class:`~opusclip_lib.workflow.artifacts.Mirror`, the cache is published into the
store, so no other worker pays for the same audio again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from opusclip_lib.api import InvalidRequestError, OpenAIClient, Transcription
from opusclip_lib.media import Segment, Transcript, Word, atomic_output, probe
from opusclip_lib.media.audio import (
    AUDIO_SUFFIX,
    Chunk,
    chunk_length_s,
    cut_audio,
    plan_chunks,
    silences,
)
from opusclip_lib.media.transcript import SENTENCE_END
from opusclip_lib.pipelines import map_bounded
from opusclip_lib.resilience import Fallback
from opusclip_lib.workflow.artifacts import Mirror
from opusclip_lib.workflow.errors import TranscriptionRejectedError
from opusclip_lib.workflow.files import write_bytes

STAGE = "transcribe"

T = TypeVar("T")


class PaidCall(Protocol):
    """Makes ``call()``, a paid API call for ``artifact``, and logs it
    (:meth:`opusclip_lib.workflow.stages.VideoRun.paid`)."""

    async def __call__(self, artifact: Path, call: Callable[[], Awaitable[T]]) -> T: ...


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _timed_words(heard: Transcription, offset: float) -> list[Word]:
    """The chunk's words with their text from the segments (punctuated) where they line up."""
    words = [Word(start=round(offset + w.start, 3), end=round(offset + w.end, 3), text=w.word)
             for w in heard.words]
    if not heard.segments:
        return words
    by_segment: list[list[int]] = [[] for _ in heard.segments]
    starts = [segment.start for segment in heard.segments]
    for index, word in enumerate(heard.words):
        middle = (word.start + word.end) / 2
        place = max((i for i, start in enumerate(starts) if start <= middle), default=0)
        by_segment[place].append(index)
    for segment, indices in zip(heard.segments, by_segment, strict=True):
        tokens = segment.text.split()
        if len(tokens) == len(indices):
            for index, token in zip(indices, tokens, strict=True):
                words[index] = words[index].model_copy(update={"text": token})
    return words


def sentences(words: Sequence[Word]) -> list[Segment]:
    """Words grouped into sentences, numbered in order."""
    groups: list[list[Word]] = [[]]
    for word in words:
        groups[-1].append(word)
        if word.text.endswith(SENTENCE_END):
            groups.append([])
    return [Segment(id=index, start=group[0].start, end=group[-1].end,
                    text=" ".join(w.text for w in group), words=tuple(group))
            for index, group in enumerate(g for g in groups if g)]


def stitch(parts: Sequence[tuple[Chunk, Transcription]], *, video_id: str, title: str,
           duration_s: float) -> Transcript:
    """Fan-in: every chunk's words shifted by the chunk's start, in chunk order, as sentences."""
    words = [word for chunk, heard in sorted(parts, key=lambda part: part[0].index)
             for word in _timed_words(heard, chunk.start)]
    language = parts[0][1].language if parts else "english"
    return Transcript(video_id=video_id, title=title, language=language, duration=duration_s,
                      segments=tuple(sentences(words)))


class Transcriber:
    """Transcribes audio files through ``openai``, caching under ``cache``."""

    def __init__(self, openai: OpenAIClient, cache: Path, *, max_chunk_bytes: int,
                 concurrency: int, language: str | None = None, artifacts: Mirror | None = None,
                 paid: PaidCall | None = None) -> None:
        self.openai = openai
        self.cache = cache
        self.max_chunk_bytes = max_chunk_bytes
        self.concurrency = concurrency
        self.language = language
        self.artifacts = artifacts
        self.paid = paid

    async def _cached(self, path: Path) -> bool:
        if self.artifacts is None:
            return path.exists()  # noqa: ASYNC240 - a stat, not worth a thread
        return await self.artifacts.fetched(path)

    async def _keep(self, path: Path, data: bytes) -> None:
        write_bytes(path, data)
        if self.artifacts is not None:
            await self.artifacts.publish(path)

    async def transcript(self, audio: Path, scratch: Path, *, source: str) -> Transcript:
        """The transcript of ``audio`` (cached by its hash; ``video_id`` is that hash, the
        caller names its video); chunks, if any, are cut into ``scratch``."""
        audio_sha = await asyncio.to_thread(sha256_file, audio)
        cached = self.cache / f"{audio_sha}.json"
        if await self._cached(cached):
            return Transcript.model_validate_json(cached.read_bytes())
        duration_s = (await probe(audio)).duration_s or 0.0
        parts = await self.chunks(audio, await self.plan(audio, duration_s), scratch,
                                  source=source)
        transcript = stitch(parts, video_id=audio_sha, title=audio.name, duration_s=duration_s)
        await self._keep(cached, transcript.model_dump_json().encode())
        return transcript

    async def plan(self, audio: Path, duration_s: float) -> list[Chunk]:
        """Where to cut: nowhere if the file fits one upload, else at silences (one ffmpeg pass
        over the whole file)."""
        size = audio.stat().st_size  # noqa: ASYNC240 - a stat, not worth a thread
        if size <= self.max_chunk_bytes:
            return [Chunk(0, 0.0, duration_s)]
        return plan_chunks(duration_s, await silences(audio),
                           chunk_length_s(duration_s, size, self.max_chunk_bytes))

    async def chunks(self, audio: Path, plan: list[Chunk], scratch: Path, *,
                     source: str) -> list[tuple[Chunk, Transcription]]:
        """Fan-out: each chunk of ``plan`` transcribed, at most ``concurrency`` at once, in chunk
        order."""

        async def one(chunk: Chunk) -> tuple[Chunk, Transcription]:
            if len(plan) == 1:
                return chunk, await self.heard(audio, source)
            piece = scratch / f"chunk{chunk.index:04d}{AUDIO_SUFFIX}"
            if not piece.exists():
                with atomic_output(piece) as temp:
                    await cut_audio(audio, temp, chunk)
            return chunk, await self.heard(piece, source)

        return await map_bounded(one, plan, limit=self.concurrency)

    async def heard(self, audio: Path, source: str) -> Transcription:
        """One upload (or its cached answer)."""
        data = await asyncio.to_thread(audio.read_bytes)
        cached = self.cache / "chunks" / f"{hashlib.sha256(data).hexdigest()}.json"
        if await self._cached(cached):
            return Transcription.model_validate_json(cached.read_bytes())
        upload = partial(self.openai.transcribe, data, filename=f"{audio.stem}{AUDIO_SUFFIX}",
                         language=self.language)
        try:
            answer = await (upload() if self.paid is None else
                            self.paid(cached, upload))
        except InvalidRequestError as error:
            raise TranscriptionRejectedError(
                source, f"the transcription endpoint refused the audio "
                        f"(HTTP {error.status_code}): {error}", stage=STAGE) from error
        heard = answer.value if isinstance(answer, Fallback) else answer
        await self._keep(cached, heard.model_dump_json().encode())
        return heard
