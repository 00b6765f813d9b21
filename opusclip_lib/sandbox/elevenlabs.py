"""Fake ElevenLabs: text-to-speech (plain and with timestamps) and the voice list; the chunked
stream and the voice routes are in :mod:`.elevenlabs_extra`, the WebSocket in :mod:`.elevenlabs_ws`.

Validation is FastAPI's (ElevenLabs runs on it): bad bodies and query values give 422 before the
handler checks the key, so the order is 422, then 401, then 404 for an unknown voice. Sandbox
choices: empty ``text`` is a 422; ``normalized_alignment`` equals ``alignment`` (no text
normalisation is simulated); a missing key is treated like an invalid one.
"""

from __future__ import annotations

import base64
import secrets
import string
from typing import Any

from cachetools import LRUCache
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from opusclip_lib.sandbox import elevenlabs_extra, elevenlabs_ws
from opusclip_lib.sandbox.audio import AudioFormat, Speech, encode, synthesise
from opusclip_lib.sandbox.config import Fault, SandboxConfig
from opusclip_lib.sandbox.elevenlabs_models import (
    OUTPUT_FORMAT,
    ElevenLabsError,
    SpeechRequest,
    unprocessable,
)
from opusclip_lib.sandbox.limits import Allowance, ConcurrencyGate, TooBusy
from opusclip_lib.sandbox.pipeline import retry_after, route, work
from opusclip_lib.sandbox.streams import StreamTracker

VOICES = (  # ElevenLabs' long-standing premade voices: (id, name, gender, accent, style, pitch)
    ("21m00Tcm4TlvDq8ikWAM", "Rachel", "female", "american", "calm", 210.0),
    ("pNInz6obpgDQGcFmaJgB", "Adam", "male", "american", "deep", 110.0),
    ("EXAVITQu4vr4xnSDxMaL", "Bella", "female", "american", "soft", 230.0),
    ("ErXwobaYiN019PkySvjV", "Antoni", "male", "american", "well-rounded", 130.0),
    ("MF3mGyEYCl7XYWbV9V6O", "Elli", "female", "american", "emotional", 240.0),
    ("TxGEqnHWrfWFTfGW9XjX", "Josh", "male", "american", "deep", 105.0),
    ("AZnzlk1XvdvUeBnXmlld", "Domi", "female", "american", "strong", 200.0),
    ("onwK4e9ZLuTAKqWW03F9", "Daniel", "male", "british", "authoritative", 120.0),
)
MODELS = ("eleven_multilingual_v2", "eleven_turbo_v2_5", "eleven_flash_v2_5")
FAULT_ERRORS = {
    429: ("system_busy", "The system is experiencing heavy traffic, please try again. Higher "
                         "subscriptions have higher priority."),
    500: ("internal_server_error", "An internal server error occurred, please try again."),
    503: ("service_unavailable", "The service is temporarily unavailable, please try again."),
    504: ("timeout", "The request timed out, please try again."),
}
HISTORY_ID_ALPHABET = string.ascii_letters + string.digits


def _voice(voice_id: str, name: str, gender: str, accent: str, style: str) -> dict[str, Any]:
    return {
        "voice_id": voice_id, "name": name, "samples": None, "category": "premade",
        "fine_tuning": None,
        "labels": {"accent": accent, "description": style, "age": "young", "gender": gender,
                   "use_case": "narration"},
        "description": None,
        "preview_url": f"https://storage.googleapis.com/eleven-public-prod/premade/voices/"
                       f"{voice_id}/preview.mp3",
        "available_for_tiers": [], "settings": None, "sharing": None,
        "high_quality_base_model_ids": list(MODELS), "verified_languages": [],
        "safety_control": None, "voice_verification": None, "permission_on_resource": None,
        "is_owner": False, "is_legacy": False, "is_mixed": False, "created_at_unix": None,
    }


class ElevenLabsAPI:
    """Routes relative to ``https://api.elevenlabs.io``."""

    hosts = ("api.elevenlabs.io",)
    base_path = ""
    local_prefix = "/elevenlabs"

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.gate = ConcurrencyGate()
        self.characters = Allowance()
        self._pitch = {v[0]: v[5] for v in VOICES}
        self._voices = {"voices": [_voice(*v[:5]) for v in VOICES]}
        self._audio: LRUCache[tuple[Any, ...], tuple[Speech, bytes]] = LRUCache(maxsize=128)
        self.streams = StreamTracker()
        self.routes: list[BaseRoute] = [
            route(self, "/v1/voices", "elevenlabs.voices.list", self.voices, ["GET"]),
            route(self, "/v1/text-to-speech/{voice_id}", "elevenlabs.text_to_speech",
                  self.text_to_speech, ["POST"]),
            route(self, "/v1/text-to-speech/{voice_id}/with-timestamps",
                  "elevenlabs.text_to_speech.with_timestamps", self.with_timestamps, ["POST"]),
            *elevenlabs_extra.routes(self),
            elevenlabs_ws.route(self),
        ]

    def reset(self) -> None:
        self.gate.reset()
        self.characters.reset()

    def fault_response(self, fault: Fault, status: int) -> Response:
        code, message = FAULT_ERRORS[status]
        headers = retry_after(fault.retry_after_s) if status == 429 else None
        return ElevenLabsError.of(status, code, message).response(headers)

    async def voices(self, request: Request) -> Response:
        try:
            self._authorise(request)
        except ElevenLabsError as error:
            return error.response()
        await work(self.config, "elevenlabs.voices.list")
        return JSONResponse(self._voices)

    async def text_to_speech(self, request: Request) -> Response:
        try:
            _, audio, fmt, headers = await self._speak(request, "elevenlabs.text_to_speech")
        except ElevenLabsError as error:
            return error.response()
        return Response(audio, media_type=fmt.media_type, headers=headers)

    async def with_timestamps(self, request: Request) -> Response:
        try:
            speech, audio, _, headers = await self._speak(
                request, "elevenlabs.text_to_speech.with_timestamps")
        except ElevenLabsError as error:
            return error.response()
        alignment = {"characters": speech.characters,
                     "character_start_times_seconds": speech.starts,
                     "character_end_times_seconds": speech.ends}
        return JSONResponse({"audio_base64": base64.b64encode(audio).decode(),
                             "alignment": alignment, "normalized_alignment": alignment},
                            headers=headers)

    def _authorise(self, request: Request) -> str:
        key = request.headers.get("xi-api-key", "")
        if not self.config.accepts_key(key):
            raise ElevenLabsError.of(401, "invalid_api_key", "Invalid API key")
        return key

    async def _speak(self, request: Request,
                     endpoint: str) -> tuple[Speech, bytes, AudioFormat, dict[str, str]]:
        try:
            fmt_name = OUTPUT_FORMAT.validate_python(
                request.query_params.get("output_format", "mp3_44100_128"))
        except ValidationError as error:
            raise unprocessable(error, "query", "output_format") from None
        try:
            body = SpeechRequest.model_validate_json(await request.body())
        except ValidationError as error:
            raise unprocessable(error, "body") from None
        key = self._authorise(request)
        voice_id = request.path_params["voice_id"]
        if voice_id not in self._pitch:
            raise ElevenLabsError.of(404, "voice_not_found",
                                     f"A voice with voice_id {voice_id} was not found.")
        settings = self.config.elevenlabs
        cost = len(body.text)
        if settings.character_quota is not None:
            left = self.characters.remaining(key, settings.character_quota)
            if cost > left:
                raise ElevenLabsError.of(
                    401, "quota_exceeded", f"This request exceeds your quota of "
                    f"{settings.character_quota}. You have {left:g} credits remaining, while "
                    f"{cost} credits are required for this request.")
        limit = settings.concurrency_limit
        try:
            async with self.gate.slot(key, limit, settings.queue_s) as in_flight:
                await work(self.config, endpoint)
                fmt = AudioFormat.parse(fmt_name)
                speech, audio = await self._render(body, voice_id, fmt)
        except TooBusy:
            raise ElevenLabsError.of(
                429, "too_many_concurrent_requests", "Too many concurrent requests. Your current "
                f"subscription is associated with a maximum of {limit} concurrent requests; "
                "please upgrade or wait for running requests to finish.") from None
        self.characters.spend(key, cost)
        headers = {
            "request-id": secrets.token_hex(16),
            "history-item-id": "".join(secrets.choice(HISTORY_ID_ALPHABET) for _ in range(20)),
            "character-cost": str(cost),
            "current-concurrent-requests": str(in_flight),
        }
        if limit is not None:
            headers["maximum-concurrent-requests"] = str(limit)
        return speech, audio, fmt, headers

    async def _render(self, body: SpeechRequest, voice_id: str,
                      fmt: AudioFormat) -> tuple[Speech, bytes]:
        speed = (body.voice_settings.speed if body.voice_settings else None) or 1.0
        per_char = self.config.elevenlabs.seconds_per_character
        cache_key = (body.text, voice_id, speed, body.seed, fmt, per_char)
        cached = self._audio.get(cache_key)
        if cached is None:
            speech = synthesise(body.text, pitch_hz=self._pitch[voice_id],
                                sample_rate=fmt.sample_rate, seconds_per_character=per_char,
                                speed=speed, seed=body.seed or 0)
            cached = self._audio[cache_key] = (speech, await encode(speech, fmt))
        return cached
