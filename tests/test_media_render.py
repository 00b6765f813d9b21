"""Clip rendering from the sample video: cut, 9:16 reframe, captions, frames and voice-over."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from opusclip_lib.media import (
    extract_frame,
    load_transcript,
    mux_voiceover,
    probe,
    render_clip,
    run_ffmpeg,
    sample_transcript,
    sample_video,
)

# "Here is the big idea: most of the time, ..." is spoken from 10.3 s to 15.0 s.
START, END = 10.0, 13.0


def _bright_pixels(frame: Path, top: float, bottom: float) -> int:
    """Near-white or yellow pixels between fractions ``top`` and ``bottom`` of the height."""
    with Image.open(frame) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    band = pixels[round(len(pixels) * top):round(len(pixels) * bottom)]
    return int(((band[..., 0] > 200) & (band[..., 1] > 190)).sum())


@pytest.mark.parametrize("reframe", ["pad", "crop"])
async def test_clip_is_cut_to_the_window_in_9_by_16(tmp_path: Path, reframe: str) -> None:
    clip = await render_clip(sample_video(), tmp_path / "clip.mp4", START, END, reframe=reframe)

    info = await probe(clip.path)
    assert info.duration_s == pytest.approx(END - START, abs=0.1)
    assert (info.width, info.height) == (360, 640)
    assert info.has_audio
    assert clip.duration_s == info.duration_s
    assert clip.captions == 0
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # noqa: ASYNC240 - a test's look at its own files


async def test_captions_are_burned_in_below_the_picture(tmp_path: Path) -> None:
    transcript = load_transcript(sample_transcript())
    plain = await render_clip(sample_video(), tmp_path / "plain.mp4", START, END)
    captioned = await render_clip(sample_video(), tmp_path / "captioned.mp4", START, END,
                                  transcript=transcript)
    assert captioned.captions >= 2

    frames = [await extract_frame(clip.path, tmp_path / f"{clip.path.stem}.png", 1.5)
              for clip in (plain, captioned)]
    plain_pixels, caption_pixels = (_bright_pixels(frame, 0.65, 0.85) for frame in frames)
    assert plain_pixels < 50 < caption_pixels


async def test_render_scratch_stays_beside_the_clip_never_in_the_temp_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    clips = tmp_path / "clips"
    seen_while_rendering: list[list[str]] = []

    def look(progress: object) -> None:
        seen_while_rendering.append(sorted(p.name for p in clips.iterdir() if p.is_dir()))

    await render_clip(sample_video(), clips / "7.mp4", START, END,
                      transcript=load_transcript(sample_transcript()), on_progress=look)
    assert seen_while_rendering  # ffmpeg reported progress at least once
    [scratch] = seen_while_rendering[0]
    assert scratch.startswith(".7.")
    assert scratch.endswith(".part-render")
    assert list(system_temp.iterdir()) == []  # a SIGKILL could leave nothing there
    assert [p.name for p in clips.iterdir()] == ["7.mp4"]  # and nothing here once done


async def test_window_past_the_end_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="past the end"):
        await render_clip(sample_video(), tmp_path / "clip.mp4", 100, 200)
    with pytest.raises(ValueError):
        await render_clip(sample_video(), tmp_path / "clip.mp4", 5, 5)
    assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - a test's look at its own files


@pytest.mark.parametrize("name", ["thumb.png", "thumb.jpg"])
async def test_extract_frame_writes_a_scaled_image(tmp_path: Path, name: str) -> None:
    frame = await extract_frame(sample_video(), tmp_path / name, 20.0, width=320)
    with Image.open(frame) as image:
        assert image.size == (320, 180)
        assert image.format == ("PNG" if name.endswith("png") else "JPEG")


async def test_voiceover_replaces_the_sound_and_keeps_the_length(tmp_path: Path) -> None:
    clip = await render_clip(sample_video(), tmp_path / "clip.mp4", START, END)
    voice = tmp_path / "voice.wav"
    await run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=1.5"], output=voice)

    dubbed = await mux_voiceover(clip.path, voice, tmp_path / "dubbed.mp4")

    info = await probe(dubbed)
    assert info.has_audio
    assert (info.width, info.height) == (360, 640)
    assert info.duration_s == pytest.approx(END - START, abs=0.1)
