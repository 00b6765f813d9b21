"""Real, tiny "speech" for the fake ElevenLabs: one tone per word, encoded like the real formats.

Every character gets a slot on a timeline (letters short, punctuation a pause), each word sounds
as a tone whose pitch comes from the word and the voice, so the audio length equals the last
alignment end time. MP3 / Opus / mu-law / A-law go through the ffmpeg binary that
``imageio-ffmpeg`` ships (about 35 ms a call); ``pcm_*`` is raw 16-bit little-endian mono.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from dataclasses import dataclass

import imageio_ffmpeg
import numpy as np

OUTPUT_FORMATS = (
    "mp3_22050_32", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96", "mp3_44100_128",
    "mp3_44100_192", "pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "pcm_48000",
    "ulaw_8000", "alaw_8000", "opus_48000_32", "opus_48000_64", "opus_48000_96", "opus_48000_128",
    "opus_48000_192",
)
MEDIA_TYPES = {"mp3": "audio/mpeg", "pcm": "audio/pcm", "ulaw": "audio/basic",
               "alaw": "audio/x-alaw-basic", "opus": "audio/ogg"}
WORD = re.compile(r"\w+")
PAUSE_WEIGHTS = {",": 2.5, ";": 2.5, ":": 2.5, ".": 4.0, "!": 4.0, "?": 4.0, "\n": 4.0}
FADE_SECONDS = 0.008


@dataclass(frozen=True, slots=True)
class AudioFormat:
    codec: str
    sample_rate: int
    kbps: int | None

    @classmethod
    def parse(cls, name: str) -> AudioFormat:
        codec, rate, *bitrate = name.split("_")
        return cls(codec, int(rate), int(bitrate[0]) if bitrate else None)

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.codec]


@dataclass(frozen=True, slots=True)
class Speech:
    samples: np.ndarray
    sample_rate: int
    characters: list[str]
    starts: list[float]
    ends: list[float]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def synthesise(text: str, *, pitch_hz: float, sample_rate: int, seconds_per_character: float,
               speed: float = 1.0, seed: int = 0) -> Speech:
    """Tones for ``text`` with per-character start/end times that add up to the audio length."""
    edges = [0.0]
    for ch in text:
        weight = PAUSE_WEIGHTS.get(ch, 0.8 if ch.isspace() else 1.0)
        edges.append(edges[-1] + weight * seconds_per_character / speed)
    edges = [round(t, 3) for t in edges]
    samples = np.zeros(round(edges[-1] * sample_rate), dtype=np.float64)
    fade = max(1, int(FADE_SECONDS * sample_rate))
    for match in WORD.finditer(text):
        first, last = (round(edges[i] * sample_rate) for i in (match.start(), match.end()))
        if last <= first:
            continue
        step = (zlib.crc32(match.group().lower().encode()) + seed) % 12
        frequency = pitch_hz * 2 ** (step / 12)
        t = np.arange(last - first) / sample_rate
        tone = 0.3 * np.sin(2 * np.pi * frequency * t) + 0.1 * np.sin(4 * np.pi * frequency * t)
        envelope = np.minimum(1.0, np.minimum(np.arange(len(t)), np.arange(len(t))[::-1]) / fade)
        samples[first:last] = tone * envelope
    return Speech((samples * 32767).astype("<i2"), sample_rate, list(text), edges[:-1], edges[1:])


async def encode(speech: Speech, fmt: AudioFormat) -> bytes:
    """Bytes in ``fmt``; raw PCM needs no encoder, the rest run ffmpeg as a subprocess."""
    pcm = speech.samples.tobytes()
    if fmt.codec == "pcm":
        return pcm
    codec_args = {
        "mp3": ["-c:a", "libmp3lame", "-b:a", f"{fmt.kbps}k", "-f", "mp3"],
        "opus": ["-c:a", "libopus", "-b:a", f"{fmt.kbps}k", "-f", "ogg"],
        "ulaw": ["-f", "mulaw"],
        "alaw": ["-f", "alaw"],
    }[fmt.codec]
    process = await asyncio.create_subprocess_exec(
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "s16le",
        "-ar", str(speech.sample_rate), "-ac", "1", "-i", "pipe:0", *codec_args, "pipe:1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await process.communicate(pcm)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode:
        raise RuntimeError(f"ffmpeg failed ({process.returncode}): {err.decode(errors='replace')}")
    return out
