"""A *short*: the best moment of a video with a thumbnail and a voice-over, made by four API calls.

Each step takes the open clients (:class:`opusclip_lib.workflow.Services`) and a :class:`Short`,
adds what its API answered and hands the short on, so the steps chain as pipeline stages with
one concurrency bound each::

    async with api_clients("24_api_video_pipeline", "pipeline", recorder=recorder) as api:
        shorts = await run_pipeline([Short(video_id) for video_id in ids],
                                    short_stages(api, {"openai": 2, "stability": 2}),
                                    recorder=recorder)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from opusclip_lib.api import NotFoundError
from opusclip_lib.api.models import Highlight, Video
from opusclip_lib.media import Transcript, load_transcript, sample_transcript
from opusclip_lib.pipelines import Stage
from opusclip_lib.workflow.services import Services, live

T = TypeVar("T")

NARRATOR = "21m00Tcm4TlvDq8ikWAM"
"""ElevenLabs' premade voice "Rachel", available to every account."""
THUMBNAIL_SEED = 7
"""A fixed seed: the same prompt gives the same image, so thumbnails can be compared."""
CANDIDATES = 3
"""Highlights asked for; the short keeps the one with the best virality score."""
VOICE_FORMAT = "mp3_44100_32"
"""Speech needs little bandwidth; small files keep the notebooks and cassettes small."""


@dataclass
class Short:
    """What the steps have found out so far about one video."""

    video_id: str
    video: Video | None = None
    highlight: Highlight | None = None
    thumbnail: bytes = field(default=b"", repr=False)
    voiceover: bytes = field(default=b"", repr=False)

    def __str__(self) -> str:  # the lane label on a pipeline timeline
        return self.video_id


def transcript_of(video: Video) -> Transcript:
    """What the video says. Every catalogue video's media is the bundled sample talk, so its
    words are the sample's (the workflow transcribes real media: :mod:`opusclip_lib.workflow`)."""
    transcript = load_transcript(sample_transcript())
    title = video.snippet.title if video.snippet else video.id
    return transcript.model_copy(update={"video_id": video.id, "title": title})


def _after(value: T | None, step: str) -> T:
    if value is None:
        raise ValueError(f"run {step} before this step")
    return value


async def fetch_video(api: Services, short: Short) -> Short:
    """YouTube ``videos.list``: title, description, tags (1 quota unit)."""
    found = live(await api.youtube.videos([short.video_id]))
    if not found:
        raise NotFoundError(f"YouTube has no video {short.video_id!r}", provider="youtube")
    short.video = found[0]
    return short


async def pick_highlight(api: Services, short: Short) -> Short:
    """OpenAI structured output: the best of a few moments, with a title and a hook."""
    transcript = transcript_of(_after(short.video, "fetch_video"))
    picks = live(await api.openai.pick_highlights(transcript.segments, CANDIDATES))
    short.highlight = picks[0]  # sorted by virality score, best first
    return short


async def make_thumbnail(api: Services, short: Short) -> Short:
    """Stability Stable Image Core: a 16:9 thumbnail for the highlight's title."""
    highlight = _after(short.highlight, "pick_highlight")
    image = live(await api.stability.generate_core(
        f"Bold flat illustration for a video thumbnail: {highlight.title}",
        aspect_ratio="16:9", seed=THUMBNAIL_SEED))
    short.thumbnail = image.image
    return short


async def record_voiceover(api: Services, short: Short) -> Short:
    """ElevenLabs text to speech: the hook, read by :data:`NARRATOR`."""
    highlight = _after(short.highlight, "pick_highlight")
    speech = live(await api.elevenlabs.text_to_speech(highlight.hook, NARRATOR,
                                                      output_format=VOICE_FORMAT))
    short.voiceover = speech.audio
    return short


STEPS: dict[str, Callable[[Services, Short], Awaitable[Short]]] = {
    "youtube": fetch_video, "openai": pick_highlight, "stability": make_thumbnail,
    "elevenlabs": record_voiceover,
}
"""The steps in order, each named after the provider it calls."""


def short_stages(api: Services, workers: Mapping[str, int]) -> list[Stage]:
    """The four steps as pipeline stages, ``workers[provider]`` at a time (default 1)."""
    return [Stage(name, partial(step, api), workers=workers.get(name, 1))
            for name, step in STEPS.items()]
