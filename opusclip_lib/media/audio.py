"""Speech audio for transcription: extract it compactly, find its silences, cut it into chunks.

A speech-to-text endpoint takes a bounded upload (OpenAI: 25 MB), so a long talk is sent in
chunks. Cutting inside a word would garble it on both sides, so the cuts go in the middle of
silences (ffmpeg's ``silencedetect``), and only where a chunk would otherwise grow too long.
Mono 16 kHz Opus at 24 kbit/s is what speech recognisers listen at anyway: about 11 MB an hour.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from opusclip_lib.media.ffmpeg import FFmpegError, ffmpeg_exe, run_ffmpeg, spawn

AUDIO_SUFFIX = ".ogg"
AUDIO_ARGS = ("-vn", "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-c:a", "libopus",
              "-b:a", "24k", "-application", "voip")
SILENCE_NOISE_DB = -30.0
SILENCE_MIN_S = 0.3
_SILENCE = re.compile(r"silence_(start|end): (-?[\d.]+)")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Seconds ``[start, end)`` of the audio."""

    index: int
    start: float
    end: float


async def extract_audio(source: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                        duration_s: float | None = None) -> None:
    """The first audio track of ``source`` as compact speech audio at ``dest`` (``.ogg``).
    Write ``dest`` through :func:`~opusclip_lib.media.atomic_output`."""
    await run_ffmpeg(["-i", os.fspath(source), *AUDIO_ARGS], output=dest, duration_s=duration_s)


async def cut_audio(source: str | os.PathLike[str], dest: str | os.PathLike[str],
                    chunk: Chunk) -> None:
    """Seconds ``chunk.start..chunk.end`` of ``source``, re-encoded so it starts exactly there."""
    await run_ffmpeg(["-ss", f"{chunk.start:.3f}", "-to", f"{chunk.end:.3f}",
                      "-i", os.fspath(source), *AUDIO_ARGS], output=dest,
                     duration_s=chunk.end - chunk.start)


async def silences(source: str | os.PathLike[str], *, noise_db: float = SILENCE_NOISE_DB,
                   min_s: float = SILENCE_MIN_S) -> list[tuple[float, float]]:
    """``(start, end)`` of every stretch quieter than ``noise_db`` for at least ``min_s``."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", os.fspath(source), "-af",
               f"silencedetect=noise={noise_db}dB:d={min_s}", "-f", "null", "-"]
    async with spawn(command) as process:
        _, report = await process.communicate()
    text = report.decode(errors="replace")
    if process.returncode != 0:
        raise FFmpegError("silence detection failed", returncode=process.returncode,
                          stderr_tail="\n".join(text.splitlines()[-20:]), command=command)
    found: list[tuple[float, float]] = []
    start: float | None = None
    for kind, value in _SILENCE.findall(text):
        if kind == "start":
            start = max(float(value), 0.0)
        elif start is not None:
            found.append((start, float(value)))
            start = None
    return found


def plan_chunks(duration_s: float, quiet: Sequence[tuple[float, float]],
                max_chunk_s: float) -> list[Chunk]:
    """Chunks no longer than ``max_chunk_s``, each cut in the middle of the last silence that
    keeps it under the bound (a hard cut only where no silence is in reach)."""
    if max_chunk_s <= 0:
        raise ValueError(f"max_chunk_s must be positive, got {max_chunk_s}")
    middles = sorted((a + b) / 2 for a, b in quiet)
    chunks: list[Chunk] = []
    start = 0.0
    while duration_s - start > max_chunk_s:
        limit = start + max_chunk_s
        cuts = [m for m in middles if start < m <= limit and m - start >= max_chunk_s / 4]
        cut = cuts[-1] if cuts else limit
        chunks.append(Chunk(len(chunks), start, cut))
        start = cut
    chunks.append(Chunk(len(chunks), start, duration_s))
    return chunks


def chunk_length_s(duration_s: float, size_bytes: int, max_bytes: int) -> float:
    """The longest chunk that stays under ``max_bytes`` at this file's average bitrate (with
    a 10% margin for bitrate that varies along the file)."""
    if size_bytes <= 0:
        return duration_s
    return 0.9 * duration_s * max_bytes / size_bytes
