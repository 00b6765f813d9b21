"""ElevenLabs client: speech bytes, timestamps, voices, character counting; then the sandbox."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from opusclip_lib.api import ElevenLabsClient, MalformedResponseError, NotFoundError
from opusclip_lib.api.models import SpeechAudio, SpeechWithTimestamps, VoiceSettings
from opusclip_lib.sandbox import SandboxConfig, build_app
from tests.api_specs import sample

KEY = "el-0123456789abcdef0123"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8
SAMPLE = "elevenlabs-tts-with-timestamps-example.json"
VOICES = {"voices": [{"voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade",
                      "labels": {"accent": "american"}, "description": None,
                      "available_for_tiers": [], "high_quality_base_model_ids": []}]}


class FakeElevenLabs:
    def __init__(self, timestamps: dict[str, Any] | None = None) -> None:
        self.timestamps = timestamps
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        headers = {"request-id": "el-req", "character-cost": "5", "history-item-id": "h1"}
        if request.url.path == "/v1/voices":
            return httpx.Response(200, json=VOICES, headers=headers)
        if request.url.path.endswith("/with-timestamps"):
            return httpx.Response(200, json=self.timestamps, headers=headers)
        return httpx.Response(200, content=MP3, headers={**headers, "content-type": "audio/mpeg"})


def client(fake: FakeElevenLabs) -> ElevenLabsClient:
    return ElevenLabsClient(KEY, transport=httpx.MockTransport(fake))


async def test_text_to_speech_returns_audio_and_counts_characters() -> None:
    fake = FakeElevenLabs()
    async with client(fake) as tts:
        speech = await tts.text_to_speech("Hello", "voice123", seed=3,
                                          voice_settings=VoiceSettings(stability=0.4))
    assert isinstance(speech, SpeechAudio)
    assert (speech.audio, speech.media_type, speech.character_cost) == (MP3, "audio/mpeg", 5)
    assert (speech.request_id, speech.history_item_id) == ("el-req", "h1")
    sent = fake.requests[0]
    assert sent.url.path == "/v1/text-to-speech/voice123"
    assert sent.url.params["output_format"] == "mp3_44100_128"
    assert sent.headers["xi-api-key"] == KEY
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {"text": "Hello", "model_id": "eleven_multilingual_v2",
                                        "voice_settings": {"stability": 0.4}, "seed": 3}
    assert tts.usage.spent == {"characters": 5}


async def test_with_timestamps_decodes_audio_and_alignment() -> None:
    example = sample(SAMPLE)
    example["audio_base64"] = base64.b64encode(MP3).decode()
    async with client(FakeElevenLabs(example)) as tts:
        speech = await tts.text_to_speech_with_timestamps("Hello", "voice123")
    assert isinstance(speech, SpeechWithTimestamps)
    assert speech.audio == MP3
    assert speech.request_id == "el-req"
    assert speech.alignment is not None
    assert "".join(speech.alignment.characters) == "Hello"
    assert speech.alignment.character_end_times_seconds[-1] == 0.5


async def test_timestamps_with_broken_base64_are_malformed() -> None:
    example = sample(SAMPLE)  # its audio_base64 is a placeholder, not base64
    async with client(FakeElevenLabs(example)) as tts:
        with pytest.raises(MalformedResponseError, match="audio_base64") as caught:
            await tts.text_to_speech_with_timestamps("Hello", "voice123")
    assert caught.value.request_id == "el-req"


async def test_voices() -> None:
    async with client(FakeElevenLabs()) as tts:
        [voice] = await tts.voices()  # type: ignore[misc]
    assert (voice.voice_id, voice.name, voice.labels) == ("21m00Tcm4TlvDq8ikWAM", "Rachel",
                                                          {"accent": "american"})


# --- against the sandbox ----------------------------------------------------------------------


async def test_sandbox_speech_timestamps_and_voices() -> None:
    transport = httpx.ASGITransport(build_app(SandboxConfig()))
    async with ElevenLabsClient("sandbox-key", transport=transport) as tts:
        voices = await tts.voices()
        voice = voices[0].voice_id  # type: ignore[index]
        speech = await tts.text_to_speech("Hello there", voice)
        timed = await tts.text_to_speech_with_timestamps("Hello there", voice)
        with pytest.raises(NotFoundError) as missing:
            await tts.text_to_speech("Hello", "no-such-voice")
    assert speech.audio.startswith(b"ID3") or speech.audio[:2] == b"\xff\xfb"  # type: ignore[union-attr]
    assert timed.alignment  # type: ignore[union-attr]
    assert "".join(timed.alignment.characters) == "Hello there"  # type: ignore[union-attr]
    assert timed.audio  # type: ignore[union-attr]
    assert missing.value.code == "voice_not_found"
    assert tts.usage.spent["characters"] == 2 * len("Hello there")
