"""Which bundled sample an upload is, and where in it: an energy-envelope fingerprint.

The fake Whisper must know the true words of the bundled samples whatever the upload's name,
codec or length. Any audio is decoded by ffmpeg to 16 kHz mono and reduced to its loudness,
one value (dB, floored at :data:`FLOOR_DB`) per 10 ms frame. Codecs keep loudness over time
even where they change every sample, so an upload matches a sample when its envelope correlates
with a stretch of the sample's (Pearson over the overlap, every 10 ms lag tried) above
:data:`MATCH_SCORE`. The best lag says where a chunk was cut from, to the frame.

Limits: the upload must lie inside one sample (up to 2 s of encoder padding aside; no speed or
pitch change)
and last at least :data:`MIN_MATCH_SECONDS` with speech in it; loud noise or music mixed in
lowers the score below the threshold, and the audio then gets the stand-in transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

SAMPLE_RATE = 16_000
FRAME_SECONDS = 0.01
FRAME = round(SAMPLE_RATE * FRAME_SECONDS)
FLOOR_DB = -70.0  # quieter than any speech; codec noise in silences all lands here
MATCH_SCORE = 0.9
MIN_MATCH_SECONDS = 3.0  # shorter stretches of two talks can look alike
PADDING_FRAMES = 200  # an encoder may add up to 2 s of silence around the audio
VOICED_BELOW_PEAK_DB = 30.0  # a frame is voiced within this many dB of the loudest frame
MIN_GAP_SECONDS = 0.25  # shorter silences do not split a voiced span
MIN_VOICED_SECONDS = 0.15


class UndecodableAudio(ValueError):
    """ffmpeg could not find an audio stream in the upload."""


async def decode(audio: bytes) -> np.ndarray:
    """16 kHz mono int16 samples of any format ffmpeg reads (from a file: MP4 may need seeking).
    """
    with tempfile.TemporaryDirectory(prefix="sandbox-audio-") as folder:
        path = Path(folder) / "upload"
        await asyncio.to_thread(path.write_bytes, audio)
        return await decode_file(path)


async def decode_file(path: Path) -> np.ndarray:
    process = await asyncio.create_subprocess_exec(
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
        "-i", str(path), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await process.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode or not out:
        reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["no audio stream"]
        raise UndecodableAudio(reason[0])
    return np.frombuffer(out, dtype="<i2")


def envelope(samples: np.ndarray) -> np.ndarray:
    """Loudness in dB full scale per 10 ms frame (a trailing part frame is dropped)."""
    frames = samples[: len(samples) // FRAME * FRAME].astype(np.float64).reshape(-1, FRAME)
    power = (frames / 32768.0) ** 2
    return np.maximum(10 * np.log10(power.mean(axis=1) + 1e-12), FLOOR_DB)


@dataclass(frozen=True, slots=True)
class Match:
    """The upload is ``name``'s audio from ``offset_s`` on; ``score`` is the correlation."""

    name: str
    offset_s: float
    score: float


def best_lag(query: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """The frame lag where ``query`` correlates best with ``reference``, and that correlation."""
    m = len(query)
    if m == 0 or m > len(reference) or query.std() == 0:
        return 0, 0.0
    centred = query - query.mean()
    dots = _sliding_dots(reference, centred)
    sums = np.concatenate(([0.0], np.cumsum(reference)))
    squares = np.concatenate(([0.0], np.cumsum(reference**2)))
    window_sum = sums[m:] - sums[:-m]
    window_var = np.maximum(squares[m:] - squares[:-m] - window_sum**2 / m, 0.0)
    denominator = np.sqrt(window_var * (centred**2).sum())
    scores = np.divide(dots, denominator, out=np.zeros_like(dots), where=denominator > 0)
    lag = int(np.argmax(scores))
    return lag, float(scores[lag])


def _sliding_dots(reference: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``np.correlate(reference, query, "valid")`` through the FFT: the direct sum costs
    len(reference) x len(query) multiplications, seconds of CPU for a chunk of a few minutes."""
    size = 1 << (len(reference) + len(query) - 2).bit_length()  # a power of two: the fast size
    spectrum = np.fft.rfft(reference, size) * np.conj(np.fft.rfft(query, size))
    return np.fft.irfft(spectrum, size)[: len(reference) - len(query) + 1]


def identify(query: np.ndarray, references: dict[str, np.ndarray]) -> Match | None:
    """The reference and offset ``query`` (an :func:`envelope`) was cut from, if any."""
    if len(query) * FRAME_SECONDS < MIN_MATCH_SECONDS:
        return None
    found = [_locate(query, name, reference) for name, reference in references.items()]
    best = max(found, key=lambda match: match.score, default=None)
    return best if best is not None and best.score >= MATCH_SCORE else None


def _locate(query: np.ndarray, name: str, reference: np.ndarray) -> Match:
    """Encoders pad and delay audio by a few milliseconds: the reference gets silence around it,
    so an upload that starts a little before the sample (or runs on after it) still fits."""
    padded = np.pad(reference, PADDING_FRAMES, constant_values=FLOOR_DB)
    lag, score = best_lag(query, padded)
    return Match(name, round((lag - PADDING_FRAMES) * FRAME_SECONDS, 2), score)


def voiced_spans(loudness: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of speech-like sound: frames near the peak, short gaps closed."""
    if len(loudness) == 0 or loudness.max() <= FLOOR_DB:
        return []
    voiced = loudness > max(loudness.max() - VOICED_BELOW_PEAK_DB, FLOOR_DB)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], voiced.astype(np.int8), [0]))))
    spans: list[list[float]] = []
    for first, stop in zip(edges[::2], edges[1::2], strict=True):
        start, end = first * FRAME_SECONDS, stop * FRAME_SECONDS
        if spans and start - spans[-1][1] < MIN_GAP_SECONDS:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [(round(a, 2), round(b, 2)) for a, b in spans if b - a >= MIN_VOICED_SECONDS]


_REFERENCES: dict[Path, np.ndarray] = {}


async def reference_envelope(media: Path) -> np.ndarray:
    """A sample's envelope, decoded once per process."""
    if media not in _REFERENCES:
        _REFERENCES[media] = envelope(await decode_file(media))
    return _REFERENCES[media]
