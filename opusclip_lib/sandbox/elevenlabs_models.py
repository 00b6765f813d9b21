"""The fake ElevenLabs' request models and error body, shared by its HTTP and WebSocket routes."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.responses import JSONResponse, Response

from opusclip_lib.sandbox.audio import OUTPUT_FORMATS

OutputFormat = Literal[OUTPUT_FORMATS]  # type: ignore[valid-type]
OUTPUT_FORMAT = TypeAdapter(OutputFormat)


class VoiceSettings(BaseModel):
    stability: float | None = Field(None, ge=0, le=1)
    similarity_boost: float | None = Field(None, ge=0, le=1)
    style: float | None = Field(None, ge=0, le=1)
    use_speaker_boost: bool | None = None
    speed: float | None = Field(None, ge=0.7, le=1.2)


class SpeechRequest(BaseModel):
    """The request body; unknown fields are ignored, as FastAPI does."""

    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1)
    model_id: str = "eleven_multilingual_v2"
    language_code: str | None = None
    voice_settings: VoiceSettings | None = None
    seed: int | None = Field(None, ge=0, le=4_294_967_295)
    previous_text: str | None = None
    next_text: str | None = None
    apply_text_normalization: Literal["auto", "on", "off"] = "auto"


class ElevenLabsError(Exception):
    """``{"detail": {"status", "message"}}`` or FastAPI's ``{"detail": [...]}`` for 422."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    @classmethod
    def of(cls, status: int, code: str, message: str) -> ElevenLabsError:
        return cls(status, {"status": code, "message": message})

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse({"detail": self.detail}, self.status, headers=headers)


def unprocessable(error: ValidationError, *where: str) -> ElevenLabsError:
    """FastAPI's 422: pydantic's errors, located under ``body`` or ``query, <name>``."""
    errors = json.loads(error.json(include_url=False))
    for entry in errors:
        entry["loc"] = [*where, *entry["loc"]]
    return ElevenLabsError(422, errors)
