"""Make the sample videos and their word-timed transcripts in ``opusclip_lib/data/media/``.

    apt-get install -y espeak-ng          # generating only; nothing at run time needs it
    .venv/bin/python scripts/make_sample_media.py                 # both samples
    .venv/bin/python scripts/make_sample_media.py opusSample2     # only the second

Inputs, all fixed here so a re-run gives the same media:
- ``TALKS``: each sample's script, one sentence per entry, and its voice;
- speech: libespeak-ng (Debian's espeak-ng 1.51), the talk's voice at ``WORDS_PER_MINUTE``,
  called through ctypes so that its word events give each word's start sample: real word
  timings, not an estimate from character counts;
- pauses: ``LEAD_IN`` before the first sentence, ``PAUSE`` between sentences, ``TAIL`` after;
- picture: the bundled ffmpeg (imageio-ffmpeg) draws a 640x360, 25 fps slide: title, the
  sentence being spoken, a clock, a speech level meter and a progress bar; text in matplotlib's
  DejaVu Sans. H.264 + AAC, bit-exact flags so the bytes do not depend on the ffmpeg banner.

Outputs: ``<id>.mp4`` and ``<id>.transcript.json`` for ``opusSample1`` (the async talk) and
``opusSample2`` (a shorter talk on something else, in another voice, so tests can tell the two
apart); segments = sentences, each with its words; seconds from the start of the video.
"""

from __future__ import annotations

import asyncio
import bisect
import ctypes
import json
import sys
import tempfile
import textwrap
import wave
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import matplotlib
import numpy as np
from tqdm import tqdm

from opusclip_lib.media import Progress, atomic_output, probe, run_ffmpeg
from opusclip_lib.media.samples import (
    SAMPLE_TITLES,
    SAMPLE_VIDEO_ID,
    SECOND_SAMPLE_VIDEO_ID,
    sample_transcript,
    sample_video,
)

WORDS_PER_MINUTE = 140
LEAD_IN, PAUSE, TAIL = 0.6, 0.6, 1.2
PEAK = 0.9  # speech is normalised to this fraction of full scale
SIZE, FPS = (640, 360), 25
SILENCE_THRESHOLD = 200  # int16 amplitude below which espeak's output counts as silence

ASYNC_TALK = [
    "Welcome to Async Python in Two Minutes.",
    "Today we turn one long video into short vertical clips, and we do it with asyncio.",
    "Here is the big idea: most of the time, your program is waiting.",
    "It waits for the database, it waits for a web API,"
    " and it waits for ffmpeg to finish a render.",
    "A synchronous program waits for each of these in turn, one after another.",
    "An async program starts them all, and then waits for all of them at once.",
    "The keyword await marks every place where your code is willing to pause.",
    "While one task pauses, the event loop runs another task that is ready.",
    "Tip number one: never block the event loop.",
    "A single slow call without await freezes every task in the program.",
    "Heavy work, like encoding video, belongs in a separate process.",
    "That is why we run ffmpeg as a subprocess, and simply await its exit.",
    "Tip number two: always put a limit on concurrency.",
    "Rendering ten clips at once on two cores is not faster. It is slower for everyone.",
    "A semaphore lets only as many renders run as you have cores.",
    "Tip number three: make cancellation safe.",
    "When a user cancels a job, terminate the process, wait a moment, and then kill it.",
    "Write every output to a temporary file, and rename it only when the render succeeds.",
    "That way, no broken clip ever shows up in your library.",
    "Tip number four: measure everything.",
    "Timelines and percentiles show you where the waiting really happens.",
    "So remember: await the slow things, limit the busy things, and clean up after yourself.",
    "Thanks for watching, and happy clipping!",
]
PASTA_TALK = [
    "Tonight we are cooking pasta for a crowd of twenty hungry guests.",
    "Start with the biggest pot you own, and fill it almost to the top.",
    "Salt the water until it tastes like the sea.",
    "Why so much salt? Because pasta only soaks it up while it boils.",
    "Never add oil to the water; the sauce will slide right off.",
    "Cook the pasta in two batches, so the water never stops boiling.",
    "Taste a piece two minutes before the time on the packet.",
    "Save a big cup of the starchy water before you drain it.",
    "Toss the pasta with the sauce in the pan, not on the plate.",
    "A splash of that cloudy water turns the sauce silky.",
    "Grate the cheese at the table, and let everyone help themselves.",
    "That is the whole secret: plenty of water, plenty of salt, and good timing.",
    "Enjoy your dinner, and save me a bowl!",
]
TALKS = {SAMPLE_VIDEO_ID: (ASYNC_TALK, b"en-us"), SECOND_SAMPLE_VIDEO_ID: (PASTA_TALK, b"en-gb")}

# libespeak-ng's C API (speak_lib.h): synchronous synthesis into a callback that receives the
# samples together with events; a WORD event carries the word's text position and start sample.
AUDIO_OUTPUT_SYNCHRONOUS, POS_CHARACTER, CHARS_UTF8, RATE = 2, 1, 1, 1
EVENT_LIST_TERMINATED, EVENT_WORD = 0, 1


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


@dataclass
class Spoken:
    """One sentence's voiced audio, its words' start samples and how many were interpolated."""

    samples: np.ndarray
    word_starts: list[int]
    interpolated: int


class Speaker:
    def __init__(self) -> None:
        self._lib = ctypes.CDLL("libespeak-ng.so.1")
        self.rate = self._lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
        if self.rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise (apt-get install espeak-ng)")
        self._lib.espeak_SetParameter(RATE, WORDS_PER_MINUTE, 0)

    def use_voice(self, voice: bytes) -> None:
        self._lib.espeak_SetVoiceByName(voice)

    def say(self, sentence: str) -> Spoken:
        chunks: list[np.ndarray] = []
        events: list[tuple[int, int]] = []  # (character index, start sample)

        @_SynthCallback
        def collect(wav, count, event_list):  # type: ignore[no-untyped-def]
            if count:
                chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            index = 0
            while event_list[index].type != EVENT_LIST_TERMINATED:
                event = event_list[index]
                if event.type == EVENT_WORD:
                    events.append((event.text_position - 1, event.sample))
                index += 1
            return 0

        self._lib.espeak_SetSynthCallback(collect)
        text = sentence.encode()
        self._lib.espeak_Synth(ctypes.c_char_p(text), len(text) + 1, 0, POS_CHARACTER, 0,
                               CHARS_UTF8, None, None)
        samples = np.concatenate(chunks)
        first, last = _voiced(samples)
        voiced = [(char, sample - first) for char, sample in events]
        return Spoken(samples[first:last], *_starts_per_word(sentence, voiced, last - first))


def _starts_per_word(sentence: str, events: list[tuple[int, int]],
                     length: int) -> tuple[list[int], int]:
    """Start sample of each whitespace-separated word of ``sentence``, and how many were guessed.

    espeak-ng reports most words, but speaks some short ones joined to a neighbour ("for the")
    and repeats a few events at clause boundaries. Events are taken in time order, kept only
    while they move forward through the sentence; a word left without one gets a start
    interpolated by character length between its reported neighbours.
    """
    words = sentence.split()
    ends, position = [], 0
    for word in words:
        position = sentence.index(word, position) + len(word)
        ends.append(position)
    known = {0: 0}
    for char, sample in sorted(events, key=lambda event: event[1]):
        word = bisect.bisect_right(ends, char)  # a space before a word belongs to that word
        if word < len(words) and word > max(known) and sample > known[max(known)]:
            known[word] = sample
    known[len(words)] = length
    starts: list[int] = []
    anchors = sorted(known)
    for left, right in pairwise(anchors):
        weights = np.cumsum([0] + [len(w) + 1 for w in words[left:right]])
        starts += [round(known[left] + (known[right] - known[left]) * w / weights[-1])
                   for w in weights[:-1]]
    return starts, len(words) + 1 - len(known)


def _voiced(samples: np.ndarray) -> tuple[int, int]:
    """First and one-past-last sample louder than the silence threshold."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_THRESHOLD)
    return int(loud[0]), int(loud[-1]) + 1


def synthesize_talk(speaker: Speaker, talk: list[str]) -> tuple[np.ndarray, list[dict]]:
    """The whole talk as one sample array, and the transcript segments with word timings."""
    rate = speaker.rate
    pieces = [np.zeros(round(LEAD_IN * rate), np.int16)]
    cursor = len(pieces[0])
    segments = []
    interpolated = 0
    for number, sentence in enumerate(talk):
        spoken = speaker.say(sentence)
        audio, starts = spoken.samples, spoken.word_starts
        interpolated += spoken.interpolated
        ends = [*starts[1:], len(audio)]
        words = [
            {"start": round((cursor + s) / rate, 3), "end": round((cursor + e) / rate, 3),
             "text": text}
            for text, s, e in zip(sentence.split(), starts, ends, strict=True)
        ]
        segments.append({"id": number, "start": words[0]["start"], "end": words[-1]["end"],
                         "text": sentence, "words": words})
        pause = np.zeros(round((PAUSE if number + 1 < len(talk) else TAIL) * rate), np.int16)
        pieces += [audio, pause]
        cursor += len(audio) + len(pause)
    words = sum(len(segment["words"]) for segment in segments)
    print(f"{words} words, {interpolated} of them timed by interpolation")
    talk = np.concatenate(pieces).astype(np.float64)
    talk *= PEAK * 32767 / np.abs(talk).max()
    return talk.round().astype(np.int16), segments


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())


def _slide_filter(workdir: Path, title: str, segments: list[dict], duration: float) -> str:
    """Title, current sentence, clock, level meter and progress bar over a dark background.

    Every text comes from a file in ``workdir`` (ffmpeg runs there) so nothing needs escaping.
    """
    width, height = SIZE
    regular = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    (workdir / "font.ttf").symlink_to(regular)
    (workdir / "title.txt").write_text(title)
    (workdir / "clock.txt").write_text("%{pts:hms}")
    text = "fontfile=font.ttf:fontcolor=white"
    video = [
        f"drawtext={text}:textfile=title.txt:expansion=none:fontsize=26:x=(w-tw)/2:y=22",
        f"drawtext={text}@0.6:textfile=clock.txt:fontsize=14:x=w-tw-12:y=h-th-18",
    ]
    for index, segment in enumerate(segments):
        show_until = segments[index + 1]["start"] if index + 1 < len(segments) else duration
        name = f"sentence{index:02d}.txt"
        (workdir / name).write_text("\n".join(textwrap.wrap(segment["text"], 40)))
        video.append(
            f"drawtext={text}:textfile={name}:expansion=none:fontsize=24:line_spacing=10:text_align=center:"
            f"x=(w-tw)/2:y=(h-th)/2-30:enable='between(t,{segment['start']},{show_until})'"
        )
    return (
        f"color=c=0x1b1d2a:s={width}x{height}:r={FPS}:d={duration}[bg];"
        f"color=c=0xf7768e:s={width}x6:r={FPS}:d={duration}[bar];"
        # A level meter, not a waveform: it shows the speech as well and costs a tenth of the bits.
        f"[0:a]showvolume=r={FPS}:w={width - 40}:h=16:f=0.85:b=0:t=0:v=0:dm=0:c=0xfff7a27a[level];"
        f"[bg][level]overlay=20:{height - 100}[base];"
        f"[base][bar]overlay=x='-w+w*t/{duration}':y=H-6,{','.join(video)},format=yuv420p[v]"
    )


async def make_video(wav: Path, title: str, segments: list[dict], duration: float,
                     dest: Path) -> None:
    workdir = wav.parent
    graph = _slide_filter(workdir, title, segments, duration)
    with tqdm(total=round(duration, 1), unit="s", desc=dest.name) as bar:
        def advance(progress: Progress) -> None:
            bar.n = round(progress.seconds, 1)
            bar.refresh()

        with atomic_output(dest) as temp:
            await run_ffmpeg(
                ["-i", wav.name, "-filter_complex", graph, "-map", "[v]", "-map", "0:a",
                 "-c:v", "libx264", "-preset", "slow", "-crf", "28", "-g", str(2 * FPS),
                 "-c:a", "aac", "-b:a", "48k", "-ar", "44100", "-t", f"{duration:.3f}",
                 "-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact",
                 "-flags:v", "+bitexact", "-flags:a", "+bitexact"],
                output=temp.resolve(), duration_s=duration, on_progress=advance, cwd=workdir,
            )


async def make_sample(speaker: Speaker, video_id: str) -> None:
    video = sample_video(video_id)
    video.parent.mkdir(parents=True, exist_ok=True)
    talk, voice = TALKS[video_id]
    speaker.use_voice(voice)
    samples, segments = synthesize_talk(speaker, talk)
    duration = round(len(samples) / speaker.rate, 3)
    title = SAMPLE_TITLES[video_id]
    with tempfile.TemporaryDirectory(prefix="opusclip-sample-") as workdir:
        wav = Path(workdir) / "speech.wav"
        _write_wav(wav, samples, speaker.rate)
        await make_video(wav, title, segments, duration, video)
    transcript = {"video_id": video_id, "title": title, "language": "en",
                  "duration": duration, "segments": segments}
    sample_transcript(video_id).write_text(json.dumps(transcript, indent=1) + "\n")
    info = await probe(video)
    print(f"{video}: {info.duration_s:.2f} s, {info.width}x{info.height}, "
          f"{video.stat().st_size / 1e6:.2f} MB; {len(segments)} sentences")


async def main(video_ids: list[str]) -> None:
    speaker = Speaker()
    for video_id in video_ids or list(TALKS):
        await make_sample(speaker, video_id)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
