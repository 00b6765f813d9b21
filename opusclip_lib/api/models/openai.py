"""OpenAI chat completions, and the structured outputs the clipping app asks the model for.

The output models double as the JSON schema sent in ``response_format`` (see
:func:`opusclip_lib.api._schema.strict_json_schema`) and as the validator of the answer, so the
schema the model saw and the check the answer passes can never drift apart. They have no
defaults: OpenAI's strict mode needs every field required.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opusclip_lib.api.models._base import APIModel

WORD = re.compile(r"\w+")


class ChatMessage(APIModel):
    role: str
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class Choice(APIModel):
    index: int
    message: ChatMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"] | None


class PromptTokensDetails(APIModel):
    cached_tokens: int = 0
    audio_tokens: int = 0


class CompletionTokensDetails(APIModel):
    reasoning_tokens: int = 0
    audio_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


class CompletionUsage(APIModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ChatCompletion(APIModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice] = Field(min_length=1)
    usage: CompletionUsage | None = None
    service_tier: str | None = None
    system_fingerprint: str | None = None
    request_id: str | None = Field(None, exclude=True, description="x-request-id, set by us")

    @property
    def text(self) -> str | None:
        """The first choice's content: what a single-answer call wants."""
        return self.choices[0].message.content


# --- structured outputs ----------------------------------------------------------------------


class TimedText(Protocol):
    """A transcript piece with times in seconds (``opusclip_lib.media.transcript.Segment`` fits)."""

    start: float
    end: float
    text: str


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Highlight(_Output):
    """One clip worth cutting: times in seconds of the source video."""

    start: float = Field(ge=0, description="clip start, seconds from the start of the video")
    end: float = Field(ge=0, description="clip end, seconds; after start")
    title: str = Field(min_length=1, description="a short, punchy title for the clip")
    hook: str = Field(min_length=1, description="the opening line that makes people keep watching")
    virality_score: float = Field(ge=0, le=100, description="0-100: how likely the clip spreads")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Highlight:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must come after start ({self.start})")
        return self


class HighlightPicks(_Output):
    highlights: list[Highlight]


class TitleIdeas(_Output):
    titles: list[str] = Field(description="title ideas, best first, each under 70 characters")


class Caption(_Output):
    text: str = Field(min_length=1, description="the post caption, ready to paste")


class Hashtags(_Output):
    """Tags arrive as the model writes them and leave as ``#OneWord``: models often drop the
    ``#`` or add spaces, which is a formatting slip, not a wrong answer."""

    hashtags: list[str] = Field(description="hashtags, each one word starting with #")

    @field_validator("hashtags")
    @classmethod
    def _as_hashtags(cls, tags: list[str]) -> list[str]:
        normalised = ["#" + "".join(word[:1].upper() + word[1:] for word in WORD.findall(tag))
                      for tag in tags]
        empty = [tag for tag, clean in zip(tags, normalised, strict=True) if clean == "#"]
        if empty:
            raise ValueError(f"hashtags without a word in them: {empty}")
        return list(dict.fromkeys(normalised))


# --- audio transcriptions ----------------------------------------------------------------------


class TranscriptionWord(APIModel):
    """One word with its times in seconds of the uploaded audio
    (``timestamp_granularities[]=word``)."""

    word: str
    start: float
    end: float


class TranscriptionSegment(APIModel):
    """One decoded stretch of speech, with Whisper's own confidence numbers."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionUsage(APIModel):
    """Whisper is billed by the second of audio."""

    type: Literal["duration"]
    seconds: float


class Transcription(APIModel):
    """``CreateTranscriptionResponseVerboseJson``: the text, its language, and timed words.

    ``language`` is the name Whisper detected or was told (``"english"``), ``duration`` the audio's
    length in seconds; ``words`` and ``segments`` are empty unless their granularity was asked for.
    """

    language: str
    duration: float
    text: str
    words: list[TranscriptionWord] = Field(default_factory=list)
    segments: list[TranscriptionSegment] = Field(default_factory=list)
    usage: TranscriptionUsage | None = None
    request_id: str | None = Field(None, description="x-request-id of the answer, set by the "
                                   "client; kept in the JSON so a cached copy says where it came "
                                   "from")
