"""The sample media and transcript, word windows, caption grouping and the ASS script."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest

from opusclip_lib.media import (
    SAMPLE_TITLE,
    SAMPLE_VIDEO_ID,
    Word,
    build_captions,
    load_transcript,
    probe,
    sample_transcript,
    sample_video,
)
from opusclip_lib.media.captions import ass_document, caption_font
from opusclip_lib.media.probe import parse_probe


@pytest.fixture(scope="module")
def transcript():
    return load_transcript(sample_transcript())


async def test_sample_video_matches_its_transcript(transcript) -> None:
    info = await probe(sample_video())
    assert 60 <= info.duration_s <= 180
    assert (info.width, info.height) == (640, 360)
    assert info.has_audio
    assert sample_video().stat().st_size < 3_000_000
    assert transcript.video_id == SAMPLE_VIDEO_ID
    assert transcript.title == SAMPLE_TITLE
    assert transcript.duration == pytest.approx(info.duration_s, abs=0.1)


def test_transcript_words_are_timed_in_order(transcript) -> None:
    words = transcript.words
    assert len(words) > 200
    assert all(w.start < w.end for w in words)
    assert all(a.end <= b.start + 1e-6 for a, b in pairwise(words))
    assert words[-1].end <= transcript.duration
    for segment in transcript.segments:
        assert " ".join(w.text for w in segment.words) == segment.text
        assert (segment.start, segment.end) == (segment.words[0].start, segment.words[-1].end)


def test_adjacent_windows_share_no_word(transcript) -> None:
    first, second = transcript.words_between(0, 30), transcript.words_between(30, 60)
    assert first
    assert second
    assert not set(first) & set(second)
    assert len(transcript.words_between(0, transcript.duration)) == len(transcript.words)
    assert transcript.text_between(0.0, 3.3) == "Welcome to Async Python in Two Minutes."


def _words(*timed: tuple[str, float, float]) -> list[Word]:
    return [Word(text=text, start=start, end=end) for text, start, end in timed]


def test_captions_break_at_sentences_pauses_and_length() -> None:
    words = _words(("One", 10.0, 10.3), ("two.", 10.3, 10.6), ("Three", 10.7, 11.0),
                   ("four", 11.0, 11.3), ("after", 13.0, 13.4), ("pause", 13.4, 13.8),
                   ("extraordinarily", 13.8, 14.5))
    captions = build_captions(words, clip_start=10.0, clip_end=14.2)
    assert [c.text for c in captions] == ["One two.", "Three four", "after pause",
                                          "extraordinarily"]
    assert captions[0].start == 0.0
    assert captions[0].end == pytest.approx(0.7)   # held until the next caption: short gap
    assert captions[1].end == pytest.approx(1.3)   # not held over the 1.7 s pause
    assert captions[-1].end == pytest.approx(4.2)  # clamped to the clip


def test_ass_karaoke_durations_add_up_to_each_caption() -> None:
    captions = build_captions(_words(("Block", 1.0, 1.33), ("{it}", 1.33, 1.71),
                                     ("now.", 1.71, 2.27)), clip_start=1.0)
    script = ass_document(captions, width=360, height=640)
    assert "PlayResX: 360\nPlayResY: 640" in script
    (dialogue,) = [line for line in script.splitlines() if line.startswith("Dialogue:")]
    assert dialogue.startswith("Dialogue: 0,0:00:00.00,0:00:01.27,Caption")
    assert sum(map(int, re.findall(r"\\k(\d+)", dialogue))) == 127
    assert "(it)" in dialogue  # braces would open an override block
    assert caption_font().is_file()


def test_parse_probe_reads_the_header_ffmpeg_prints() -> None:
    report = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mp4':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 126 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 360x640 [SAR 1:1 DAR 9:16], 62 kb/s, 29.97 fps, 25 tbr (default)
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 56 kb/s (default)
At least one output file must be specified"""  # noqa: E501 - ffmpeg's report, verbatim
    info = parse_probe(sample_video(), report)
    assert (info.duration_s, info.width, info.height, info.fps, info.has_audio) == (
        62.5, 360, 640, 29.97, True)
