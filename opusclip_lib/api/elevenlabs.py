"""ElevenLabs: text to speech (audio bytes), speech with character timestamps, and voices.

Characters are the currency: ``usage.spent["characters"]`` adds up the ``character-cost``
header of each call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Unpack

import httpx
from pydantic import SecretStr

from opusclip_lib.api._base import APIClient, ClientOptions
from opusclip_lib.api._headers import request_id_of
from opusclip_lib.api._speech import AudioStream, SpeechSocket
from opusclip_lib.api._streaming import open_stream
from opusclip_lib.api._urls import segment
from opusclip_lib.api.models.elevenlabs import (
    SpeechAudio,
    SpeechWithTimestamps,
    Voice,
    VoiceList,
    VoiceSettings,
)
from opusclip_lib.api.models.streaming import StreamedFile
from opusclip_lib.resilience.fallback import Fallback

T = TypeVar("T")

DEFAULT_MODEL = "eleven_multilingual_v2"
DEFAULT_OUTPUT_FORMAT = "mp3_44100_128"
STREAM_CHUNK_TIMEOUT_S = 20.0  # longest gap between two audio chunks before a stream stalls


def character_cost(headers: httpx.Headers) -> int | None:
    value = headers.get("character-cost")
    return int(value) if value and value.isdigit() else None


class ElevenLabsClient(APIClient):
    """``async with ElevenLabsClient() as tts: speech = await tts.text_to_speech(text, voice)``.

    Key from ``ELEVENLABS_API_KEY`` (``xi-api-key`` header). Timeouts: 5 s to connect, 60 s to
    read (a paragraph renders in a few seconds; requests over the plan's concurrency queue on the
    server first), 30 s for a pooled connection. Limits: 15 connections, the largest plan's
    concurrency: more in flight would only queue on their side and then earn 429s.
    """

    provider = "elevenlabs"
    key_variable = "ELEVENLABS_API_KEY"
    default_base_url = "https://api.elevenlabs.io"
    default_timeout = httpx.Timeout(60.0, connect=5.0, pool=30.0)
    default_limits = httpx.Limits(max_connections=15, max_keepalive_connections=15,
                                  keepalive_expiry=4.0)
    cost_unit = "characters"

    def __init__(self, api_key: str | SecretStr | None = None, *, model_id: str = DEFAULT_MODEL,
                 output_format: str = DEFAULT_OUTPUT_FORMAT,
                 **options: Unpack[ClientOptions]) -> None:
        super().__init__(api_key, **options)
        self.model_id = model_id
        self.output_format = output_format

    def _auth_headers(self, secret: str) -> dict[str, str]:
        return {"xi-api-key": secret}

    def _spend(self, operation: str, response: httpx.Response, result: object) -> dict[str, float]:
        cost = character_cost(response.headers)
        return {} if cost is None else {"characters": cost}

    async def text_to_speech(self, text: str, voice_id: str, *, model_id: str | None = None,
                             voice_settings: VoiceSettings | None = None, seed: int | None = None,
                             output_format: str | None = None,
                             ) -> SpeechAudio | Fallback[SpeechAudio]:
        """The spoken text as audio bytes (MP3 by default)."""
        def parse(response: httpx.Response) -> SpeechAudio:
            media_type = response.headers.get("content-type", "").split(";")[0]
            if not media_type.startswith("audio/") or not response.content:
                raise self._malformed(response, f"expected audio, got {media_type or 'nothing'}")
            return SpeechAudio(audio=response.content, media_type=media_type,
                               character_cost=character_cost(response.headers),
                               history_item_id=response.headers.get("history-item-id"),
                               request_id=request_id_of(response.headers))

        return await self._speak("", "text_to_speech", "audio/mpeg", parse, text, voice_id,
                                 model_id, voice_settings, seed, output_format)

    async def text_to_speech_with_timestamps(
            self, text: str, voice_id: str, *, model_id: str | None = None,
            voice_settings: VoiceSettings | None = None, seed: int | None = None,
            output_format: str | None = None,
    ) -> SpeechWithTimestamps | Fallback[SpeechWithTimestamps]:
        """Audio (decoded from base64) plus when each character is spoken: caption timing."""
        def parse(response: httpx.Response) -> SpeechWithTimestamps:
            speech = self._parse_model(response, SpeechWithTimestamps)
            speech.request_id = request_id_of(response.headers)
            return speech

        return await self._speak("/with-timestamps", "text_to_speech.with_timestamps",
                                 "application/json", parse, text, voice_id, model_id,
                                 voice_settings, seed, output_format)

    def stream_speech(self, text: str, voice_id: str, *, model_id: str | None = None,
                      voice_settings: VoiceSettings | None = None, seed: int | None = None,
                      output_format: str | None = None,
                      chunk_timeout_s: float = STREAM_CHUNK_TIMEOUT_S) -> AudioStream:
        """``async with tts.stream_speech(text, voice) as audio: async for piece in audio:``,
        ``POST /v1/text-to-speech/{voice_id}/stream``: audio bytes as they are made."""
        path, params, body = self._speech_request("/stream", text, voice_id, model_id,
                                                  voice_settings, seed, output_format)
        request = self._request("POST", path, params=params, json=body, headers={
            "Accept": "audio/*", "Accept-Encoding": "identity"})
        return AudioStream(open_stream(self, "text_to_speech.stream", request,
                                       chunk_timeout_s=chunk_timeout_s))

    async def stream_speech_to_file(self, text: str, voice_id: str, path: str | os.PathLike[str],
                                    **options: Any) -> StreamedFile:
        """Stream speech into ``path`` as it arrives (written beside it, renamed when whole: a
        cut stream leaves no half file behind, and its error says how much had come)."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as file:
                async with self.stream_speech(text, voice_id, **options) as audio:
                    async for piece in audio:
                        await asyncio.to_thread(file.write, piece)
            partial.replace(target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        body, meter = audio.body, audio.body.meter
        return StreamedFile(path=target, bytes=meter.bytes, ttfb_s=meter.ttfb_s,
                            seconds=meter.seconds,
                            media_type=body.headers.get("content-type", "").split(";")[0],
                            character_cost=character_cost(body.headers),
                            request_id=request_id_of(body.headers))

    def speech_socket(self, voice_id: str, *, model_id: str | None = None,
                      voice_settings: VoiceSettings | None = None,
                      output_format: str | None = None,
                      chunk_timeout_s: float = STREAM_CHUNK_TIMEOUT_S) -> SpeechSocket:
        """``async with tts.speech_socket(voice) as speech:`` the WebSocket input-streaming API
        (``/v1/text-to-speech/{voice_id}/stream-input``): send text, receive audio and timing."""
        query = {"model_id": model_id or self.model_id,
                 "output_format": output_format or self.output_format}
        settings = voice_settings.model_dump(exclude_none=True) if voice_settings else None
        return SpeechSocket(self, voice_id, query=query, voice_settings=settings,
                            chunk_timeout_s=chunk_timeout_s)

    def _speech_request(self, suffix: str, text: str, voice_id: str, model_id: str | None,
                        voice_settings: VoiceSettings | None, seed: int | None,
                        output_format: str | None,
                        ) -> tuple[str, dict[str, str], dict[str, Any]]:
        path = f"/v1/text-to-speech/{segment(voice_id)}{suffix}"
        params = {"output_format": output_format or self.output_format}
        body: dict[str, Any] = {"text": text, "model_id": model_id or self.model_id}
        if voice_settings is not None:
            body["voice_settings"] = voice_settings.model_dump(exclude_none=True)
        if seed is not None:
            body["seed"] = seed
        return path, params, body

    async def _speak(self, suffix: str, operation: str, accept: str,
                     parse: Callable[[httpx.Response], T], text: str, voice_id: str,
                     model_id: str | None, voice_settings: VoiceSettings | None,
                     seed: int | None, output_format: str | None) -> T | Fallback[T]:
        path, params, body = self._speech_request(suffix, text, voice_id, model_id,
                                                  voice_settings, seed, output_format)

        async def attempt() -> T:
            request = self._request("POST", path, params=params, json=body,
                                    headers={"Accept": accept})
            return await self._exchange(operation, request, parse)

        return await self._call(attempt, cache_key=self._cache_key("POST", path, params, body))

    async def voices(self) -> list[Voice] | Fallback[list[Voice]]:
        """``GET /v1/voices``: the voices this key may use."""
        async def attempt() -> list[Voice]:
            request = self._request("GET", "/v1/voices", headers={"Accept": "application/json"})
            listing = await self._exchange(
                "voices.list", request, lambda response: self._parse_model(response, VoiceList))
            return listing.voices

        return await self._call(attempt, cache_key=self._cache_key("GET", "/v1/voices"))
