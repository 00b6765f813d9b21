"""Model styles the APIs use (Google's camelCase, everyone else's snake_case), and base64."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel


def _strict_base64(value: object) -> object:
    """Refuse anything but clean base64: a lenient decoder turns a corrupt payload into noise."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"not base64: {exc}") from None
    return value


def _to_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


Base64Data = Annotated[bytes, BeforeValidator(_strict_base64),
                       PlainSerializer(_to_base64, when_used="json")]
"""Bytes that arrive as a base64 string (images and audio inside JSON), and leave as one."""


class APIModel(BaseModel):
    """A response object: unknown fields are dropped so a new API field never breaks parsing."""

    model_config = ConfigDict(extra="ignore")


class CamelModel(APIModel):
    """Google's JSON: ``contentDetails`` in the wire format, ``content_details`` in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
