"""The bundled samples: both present, with transcripts that say different things."""

from __future__ import annotations

import pytest

from opusclip_lib.media import load_transcript, sample_transcript, sample_video
from opusclip_lib.media.samples import SAMPLE_TITLES, SECOND_SAMPLE_VIDEO_ID


@pytest.mark.parametrize("video_id", list(SAMPLE_TITLES))
def test_each_sample_has_its_video_and_transcript(video_id):
    transcript = load_transcript(sample_transcript(video_id))
    assert sample_video(video_id).stat().st_size < 2_000_000
    assert (transcript.video_id, transcript.title) == (video_id, SAMPLE_TITLES[video_id])
    for segment in transcript.segments:
        assert " ".join(word.text for word in segment.words) == segment.text


def test_the_samples_say_different_things():
    first = {w.text.lower() for w in load_transcript(sample_transcript()).words}
    second = {w.text.lower() for w in load_transcript(
        sample_transcript(SECOND_SAMPLE_VIDEO_ID)).words}
    assert {"asyncio.", "semaphore"} <= first - second
    assert {"pasta", "salt"} <= second - first


def test_an_unknown_sample_is_a_clear_error():
    with pytest.raises(ValueError, match="no bundled sample 'opusSample9'"):
        sample_video("opusSample9")
