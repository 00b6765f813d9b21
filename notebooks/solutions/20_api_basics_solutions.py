"""Solutions to the exercises of notebooks/20_api_basics.ipynb.

Run: .venv/bin/python notebooks/solutions/20_api_basics_solutions.py
It replays its own cassettes (``cassettes/20_api_basics_solutions/``); record them again with
``OPUSCLIP_RECORD=sandbox .venv/bin/python -m opusclip_lib.cassettes record
20_api_basics_solutions`` (or ``OPUSCLIP_RECORD=live`` with your keys). This is a script, so it
starts its own event loop with asyncio.run(); in a notebook, paste the body of a function into a
cell and ``await`` it.
"""

from __future__ import annotations

import asyncio
import struct
import tempfile
from pathlib import Path

from opusclip_lib.api import NotFoundError
from opusclip_lib.media import (
    atomic_output,
    load_transcript,
    run_ffmpeg,
    sample_transcript,
    sample_video,
)
from opusclip_lib.metrics import Recorder
from opusclip_lib.offline import api_clients

FOLDER = "20_api_basics_solutions"


async def exercise_1_pages_cost_quota() -> None:
    async with api_clients(FOLDER, "exercise_1") as api:
        titles = [item.snippet.title
                  async for item in api.youtube.search_items("python", limit=8, max_results=5)]
        usage = api.youtube.usage
    print("\n".join(f"  {title}" for title in titles))
    print(f"{len(titles)} results: {usage.calls} search.list calls, {api.youtube.quota_used} units")
    # 8 results at 5 a page need 2 pages, 100 units each. `limit` stops the iterator before it
    # asks for a third page nobody would read: without it, a loop that breaks late (or never)
    # spends 100 units per page.


async def exercise_2_two_questions_at_once() -> None:
    transcript = load_transcript(sample_transcript())
    recorder = Recorder()
    async with api_clients(FOLDER, "exercise_2", recorder=recorder) as api:
        top = (await api.openai.pick_highlights(transcript.segments, 3))[0]
        said = [s for s in transcript.segments if top.start <= s.start and s.end <= top.end + 1]
        async with asyncio.TaskGroup() as group:
            titles = group.create_task(api.openai.suggest_titles(said, 5))
            hashtags = group.create_task(api.openai.suggest_hashtags(said, 5))
    print(f"clip {top.start:g}-{top.end:g} s:")
    print(f"  titles {titles.result()}\n  hashtags {hashtags.result()}")
    calls = recorder.frame("http")
    print(calls[["name", "cost", "prompt_tokens", "completion_tokens"]].to_string(index=False))
    # Both calls send the same clip transcript, so their prompts cost about the same; what
    # differs is the answer (completion tokens). Run one after the other, the two would take
    # the sum of their latencies; in the TaskGroup, the longer of the two. (The sandbox builds
    # its titles and hashtags from the clip's own sentences and words; a model writes new ones.)


async def exercise_3_vertical_thumbnail() -> None:
    async with api_clients(FOLDER, "exercise_3") as api:
        image = await api.stability.generate_core("A phone screen showing a clip", seed=42,
                                                  aspect_ratio="9:16")
    # A PNG starts with an 8-byte signature, then the IHDR chunk: 4 bytes of length, the 4
    # letters "IHDR", then width and height as big-endian 32-bit integers (bytes 16-24).
    assert image.image[12:16] == b"IHDR"
    width, height = struct.unpack(">II", image.image[16:24])
    print(f"{width} x {height} px: {height / width:.3f} (9:16 is {16 / 9:.3f})")


async def exercise_4_a_voice_that_does_not_exist() -> None:
    async with api_clients(FOLDER, "exercise_4") as api:
        try:
            speech = await api.elevenlabs.text_to_speech("Hello!", "no-such-voice")
        except NotFoundError as error:
            print(f"{type(error).__name__} ({error.status_code}, retryable={error.retryable}): "
                  f"{error.message}")
            voices = await api.elevenlabs.voices()
            speech = await api.elevenlabs.text_to_speech("Hello!", voices[0].voice_id)
            print(f"fell back to {voices[0].name}")
    print(f"{len(speech.audio):,} bytes of {speech.media_type}")
    # Not retryable: the voice will not exist on the next try either. Retrying is for 429 and 5xx.


async def cut_audio(start_s: float, seconds: float, dest: Path) -> bytes:
    """``seconds`` of the sample's audio from ``start_s`` as compact MP3 (as in the notebook)."""
    with atomic_output(dest) as partial:
        await run_ffmpeg(["-ss", str(start_s), "-t", str(seconds), "-i", sample_video(), "-vn",
                          "-ac", "1", "-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k",
                          "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"],
                         output=partial)
    return dest.read_bytes()


async def exercise_5_two_chunks_at_once() -> None:
    starts_s, seconds = (90.0, 96.0), 6.0
    with tempfile.TemporaryDirectory() as folder:
        chunks = [await cut_audio(start, seconds, Path(folder) / f"chunk{n}.mp3")
                  for n, start in enumerate(starts_s)]
    async with api_clients(FOLDER, "exercise_5") as api, asyncio.TaskGroup() as group:
        calls = [group.create_task(api.openai.transcribe(chunk, filename=f"chunk{n}.mp3"))
                 for n, chunk in enumerate(chunks)]
    # Fan-in: each chunk's times start at 0, so add the chunk's start to put them on the video's
    # clock, then join the pieces in order.
    words = [(word.start + start, word.word)
             for start, call in zip(starts_s, calls, strict=True) for word in call.result().words]
    print(" ".join(text for _, text in words))
    print(f"{len(words)} words from {words[0][0]:.2f} s to {words[-1][0]:.2f} s of the video")
    # They read as one: a word cut by the boundary belongs to the chunk holding most of it (its
    # middle), so none is lost or doubled. A real pipeline cuts at silences instead, so that no
    # word is cut at all.


async def main() -> None:
    for exercise in (exercise_1_pages_cost_quota, exercise_2_two_questions_at_once,
                     exercise_3_vertical_thumbnail, exercise_4_a_voice_that_does_not_exist,
                     exercise_5_two_chunks_at_once):
        print(f"--- {exercise.__name__}")
        await exercise()


if __name__ == "__main__":
    asyncio.run(main())
