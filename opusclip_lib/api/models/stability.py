"""Stability AI v2beta Stable Image: the request we validate locally and the image we return."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from opusclip_lib.api.models._base import APIModel, Base64Data

AspectRatio = Literal["21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21"]
OutputFormat = Literal["png", "jpeg", "webp"]
FinishReason = Literal["SUCCESS", "CONTENT_FILTERED"]


class CoreRequest(BaseModel):
    """The documented limits of ``generate/core``, checked before a credit is at stake."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=10_000)
    aspect_ratio: AspectRatio = "1:1"
    negative_prompt: str | None = Field(None, max_length=10_000)
    seed: int = Field(0, ge=0, le=4_294_967_294)
    style_preset: str | None = None
    output_format: OutputFormat = "png"

    def form(self) -> dict[str, tuple[None, str]]:
        """multipart/form-data fields (no file name: plain form values)."""
        return {name: (None, str(value))
                for name, value in self.model_dump(exclude_none=True).items()}


class CoreJSONAnswer(APIModel):
    """The ``Accept: application/json`` answer: the image inside the body, not the headers."""

    image: Base64Data = Field(repr=False)
    finish_reason: FinishReason
    seed: int | None = None


class GeneratedImage(BaseModel):
    """The image and how it came out.

    ``content_filtered`` is a flag, not an exception: the call succeeded, the credits are spent
    and the (blurred) bytes are real, so the caller decides: retry with another prompt, use a
    placeholder, or keep it. Retrying automatically would only pay again for the same verdict.
    """

    #: In JSON (a shared cache) the image is base64: raw bytes are not valid UTF-8 text.
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    image: bytes = Field(repr=False)
    media_type: str
    finish_reason: FinishReason
    seed: int | None = None
    request_id: str | None = None

    @property
    def content_filtered(self) -> bool:
        return self.finish_reason == "CONTENT_FILTERED"


class GenerationStarted(APIModel):
    """The answer to a started job: the id to poll ``/v2beta/results/{id}`` with."""

    id: str = Field(min_length=1)
