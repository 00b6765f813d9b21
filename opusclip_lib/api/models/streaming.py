"""Pieces of streamed answers: OpenAI chat chunks, ElevenLabs WebSocket audio, a written file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opusclip_lib.api.models._base import APIModel, Base64Data
from opusclip_lib.api.models.openai import CompletionUsage


class ChoiceDelta(APIModel):
    """What one chunk adds to a choice: usually a few characters of ``content``."""

    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChunkChoice(APIModel):
    index: int
    delta: ChoiceDelta
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter",
                           "function_call"] | None = None


class ChatCompletionChunk(APIModel):
    """One ``data:`` event of a streamed completion (``object: chat.completion.chunk``).

    With ``stream_options.include_usage`` the last chunk has no choices and carries ``usage``.
    """

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    service_tier: str | None = None
    system_fingerprint: str | None = None

    @property
    def content(self) -> str:
        """The first choice's new text ('' for role, finish and usage chunks)."""
        return (self.choices[0].delta.content or "") if self.choices else ""


class WordTiming(APIModel):
    """ElevenLabs WebSocket alignment: per character, start and duration in ms, relative to the
    audio chunk it came with (not to the whole speech)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    chars: list[str]
    char_start_times_ms: list[int] = Field(alias="charStartTimesMs")
    chars_durations_ms: list[int] = Field(alias="charsDurationsMs")


class SpeechChunk(APIModel):
    """One ``AudioOutput`` message of the TTS WebSocket: audio (decoded) and its alignment."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    audio: Base64Data = Field(repr=False)
    alignment: WordTiming | None = None
    normalized_alignment: WordTiming | None = Field(None, alias="normalizedAlignment")


class StreamedFile(BaseModel):
    """Audio streamed to disk: where, how much, and how soon the first byte came."""

    path: Path
    bytes: int
    media_type: str
    ttfb_s: float | None
    seconds: float
    character_cost: int | None = None
    request_id: str | None = None
