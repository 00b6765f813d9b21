"""Fake ElevenLabs text-to-speech WebSocket: ``/v1/text-to-speech/{voice_id}/stream-input``.

Follows ``elevenlabs-asyncapi.yml`` (channel ``stream-input``): the client sends
``InitializeConnection`` (``{"text": " ", "voice_settings"?, "xi_api_key"?}``), then
``SendText`` messages (``{"text": "Hello ", "try_trigger_generation"?, "flush"?}``), then
``CloseConnection`` (``{"text": ""}``); the server answers ``AudioOutput`` messages (``audio``
base64 in ``output_format``, with ``alignment`` and ``normalizedAlignment`` in milliseconds
relative to the chunk) and a last ``FinalOutput`` (``{"isFinal": true}``), then closes with 1000.

Sandbox choices where the document is silent: the buffered text is spoken up to its last
finished sentence (``.!?`` then a space) once that is ``GENERATE_AT_CHARACTERS`` long, all of it
on ``flush``/``try_trigger_generation`` and at the end; a bad key, an unknown voice or a
malformed message close the socket with 1008 (policy violation) and the reason; no message for
``inactivity_timeout`` seconds closes it with 1008 too; injected
``server_error``/``unavailable``/``rate_limit`` faults close with 1011 or 1013 before any audio,
``cut`` closes with 1011 after ``after_chunks`` audio messages, ``stall`` waits ``hang_s`` before
the next one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from opusclip_lib.sandbox.audio import AudioFormat, Speech
from opusclip_lib.sandbox.elevenlabs_models import OUTPUT_FORMAT, SpeechRequest
from opusclip_lib.sandbox.pipeline import work

if TYPE_CHECKING:
    from opusclip_lib.sandbox.elevenlabs import ElevenLabsAPI

ENDPOINT = "elevenlabs.text_to_speech.websocket"
GENERATE_AT_CHARACTERS = 50
SENTENCE_END = re.compile(r"[.!?]\s")
POLICY_VIOLATION, SERVER_ERROR, TRY_AGAIN_LATER = 1008, 1011, 1013
FAULT_CLOSE = {"server_error": SERVER_ERROR, "unavailable": TRY_AGAIN_LATER,
               "rate_limit": TRY_AGAIN_LATER, "timeout": SERVER_ERROR, "malformed": SERVER_ERROR}


class Refused(Exception):
    """Close the socket with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def alignment(speech: Speech) -> dict[str, Any]:
    return {"chars": speech.characters,
            "charStartTimesMs": [round(s * 1000) for s in speech.starts],
            "charsDurationsMs": [round((e - s) * 1000) for s, e in zip(speech.starts, speech.ends,
                                                                         strict=True)]}


def route(api: ElevenLabsAPI) -> WebSocketRoute:
    async def session(websocket: WebSocket) -> None:
        await websocket.accept()
        params = websocket.query_params
        voice_id = websocket.path_params["voice_id"]
        fault = api.config.take_fault(ENDPOINT)
        with api.streams.track():
            try:
                if fault is not None and fault.kind in FAULT_CLOSE:
                    raise Refused(FAULT_CLOSE[fault.kind], f"injected {fault.kind}")
                try:
                    fmt = AudioFormat.parse(OUTPUT_FORMAT.validate_python(
                        params.get("output_format", "mp3_44100_128")))
                    idle_s = float(params.get("inactivity_timeout", "20"))
                except (ValidationError, ValueError):
                    raise Refused(POLICY_VIOLATION, "invalid_request: bad query") from None
                first = await _receive(websocket, idle_s)
                key = (websocket.headers.get("xi-api-key") or first.get("xi_api_key")
                       or first.get("xi-api-key") or "")
                if not api.config.accepts_key(key):
                    raise Refused(POLICY_VIOLATION, "invalid_api_key: Invalid API key")
                if voice_id not in api._pitch:
                    raise Refused(POLICY_VIOLATION, f"voice_not_found: A voice with voice_id "
                                                    f"{voice_id} was not found.")
                settings = first.get("voice_settings") or None
                sent = 0
                buffer = ""
                while True:
                    message = await _receive(websocket, idle_s)
                    text = message.get("text")
                    if not isinstance(text, str):
                        raise Refused(POLICY_VIOLATION, "invalid_message: 'text' is required")
                    buffer += text
                    closing = text == ""
                    ready = len(buffer) if closing or message.get("flush") or message.get(
                        "try_trigger_generation") else _sentences_end(buffer)
                    if buffer[:ready].strip():
                        if sent == 0:
                            await work(api.config, ENDPOINT)
                        await _pace(api, fault, sent)
                        body = SpeechRequest(text=buffer[:ready], model_id=params.get(
                            "model_id", "eleven_multilingual_v2"), voice_settings=settings)
                        speech, audio = await api._render(body, voice_id, fmt)
                        api.characters.spend(key, ready)
                        timing = alignment(speech)
                        await websocket.send_text(json.dumps({
                            "audio": base64.b64encode(audio).decode(), "isFinal": None,
                            "normalizedAlignment": timing, "alignment": timing}))
                        sent += 1
                        buffer = buffer[ready:]
                    if closing:
                        await websocket.send_text(json.dumps({"isFinal": True}))
                        await websocket.close(1000)
                        return
            except Refused as refused:
                await websocket.close(refused.code, refused.reason)
            except WebSocketDisconnect:
                return

    return WebSocketRoute("/v1/text-to-speech/{voice_id}/stream-input", session, name=ENDPOINT)


def _sentences_end(buffer: str) -> int:
    """How much of ``buffer`` to speak now: up to its last finished sentence once that is at
    least ``GENERATE_AT_CHARACTERS`` long, else nothing (0)."""
    ends = [match.end() for match in SENTENCE_END.finditer(buffer)]
    return ends[-1] if ends and ends[-1] >= GENERATE_AT_CHARACTERS else 0


async def _receive(websocket: WebSocket, idle_s: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(idle_s):
            raw = await websocket.receive_text()
    except TimeoutError:
        raise Refused(POLICY_VIOLATION, f"input_timeout_exceeded: Have not received a new text "
                                        f"input within the timeout of {idle_s:g} seconds") from None
    try:
        message = json.loads(raw)
    except ValueError:
        raise Refused(POLICY_VIOLATION, "invalid_message: not JSON") from None
    if not isinstance(message, dict):
        raise Refused(POLICY_VIOLATION, "invalid_message: expected an object")
    return message


async def _pace(api: ElevenLabsAPI, fault: Any, sent: int) -> None:
    """The mid-stream fault before audio message ``sent``, else the chunk latency."""
    if fault is not None and sent == fault.after_chunks:
        if fault.kind == "cut":
            raise Refused(SERVER_ERROR, "internal_error: the connection was cut (injected)")
        if fault.kind == "stall":
            await asyncio.sleep(fault.hang_s)
            return
    if sent:
        seconds = api.config.elevenlabs.chunk_latency.sample_s()
        if seconds > 0:
            await asyncio.sleep(seconds)
