"""ElevenLabs text-to-speech: audio, character alignment and voices."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from opusclip_lib.api.models._base import APIModel, Base64Data


class VoiceSettings(BaseModel):
    """Optional overrides of the voice's stored settings; unset fields are not sent."""

    stability: float | None = Field(None, ge=0, le=1)
    similarity_boost: float | None = Field(None, ge=0, le=1)
    style: float | None = Field(None, ge=0, le=1)
    use_speaker_boost: bool | None = None
    speed: float | None = Field(None, gt=0)


class SpeechAudio(BaseModel):
    #: In JSON (a shared cache) the audio is base64: raw bytes are not valid UTF-8 text.
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    audio: bytes = Field(repr=False)
    media_type: str
    character_cost: int | None = None
    history_item_id: str | None = None
    request_id: str | None = None


class Alignment(APIModel):
    """Per-character timing: ``characters[i]`` is spoken between its start and end seconds."""

    characters: list[str]
    character_start_times_seconds: list[float]
    character_end_times_seconds: list[float]


class SpeechWithTimestamps(APIModel):
    audio: Base64Data = Field(alias="audio_base64", repr=False)
    alignment: Alignment | None = None
    normalized_alignment: Alignment | None = None
    request_id: str | None = None


class Voice(APIModel):
    voice_id: str
    name: str
    category: str | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    preview_url: str | None = None


class VoiceList(APIModel):
    voices: list[Voice]
