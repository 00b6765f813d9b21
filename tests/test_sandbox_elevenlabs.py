"""The fake ElevenLabs: real audio whose length matches its alignment, its errors and limits."""

from __future__ import annotations

import asyncio
import base64
import re

import imageio_ffmpeg

from opusclip_lib.sandbox import (
    Latency,
)

RACHEL = "21m00Tcm4TlvDq8ikWAM"
TEXT = "Async Python, in two minutes. Ready?"


async def decoded_seconds(audio: bytes, sample_rate: int = 44_100) -> float:
    """Decode with ffmpeg to mono 16-bit PCM and measure: proves the bytes are real audio."""
    process = await asyncio.create_subprocess_exec(
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", "pipe:0",
        "-f", "s16le", "-ac", "1", "-ar", str(sample_rate), "pipe:1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    pcm, err = await process.communicate(audio)
    assert process.returncode == 0, err
    return len(pcm) / 2 / sample_rate


async def test_mp3_is_real_and_as_long_as_the_alignment(sandbox):
    speech = await sandbox.elevenlabs.post(
        f"/v1/text-to-speech/{RACHEL}", params={"output_format": "mp3_44100_128"},
        json={"text": TEXT, "model_id": "eleven_multilingual_v2"})
    assert speech.status_code == 200
    assert speech.headers["content-type"] == "audio/mpeg"
    assert speech.content[:3] == b"ID3" or speech.content[0] == 0xFF
    assert speech.headers["character-cost"] == str(len(TEXT))
    assert re.fullmatch(r"[0-9a-f]{32}", speech.headers["request-id"])
    assert speech.headers["history-item-id"]
    assert (speech.headers["current-concurrent-requests"],
            speech.headers["maximum-concurrent-requests"]) == ("1", "5")
    timed = (await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}/with-timestamps",
                                           json={"text": TEXT})).json()
    alignment = timed["alignment"]
    assert "".join(alignment["characters"]) == TEXT
    starts, ends = alignment["character_start_times_seconds"], alignment[
        "character_end_times_seconds"]
    assert starts[0] == 0
    assert all(a < b for a, b in zip(starts, ends, strict=True))
    assert all(b == c for b, c in zip(ends, starts[1:], strict=False))
    audio = base64.b64decode(timed["audio_base64"])
    assert audio == speech.content
    # MP3 pads to whole 1152-sample frames (26 ms at 44.1 kHz): allow two frames of slack.
    assert abs(await decoded_seconds(audio) - ends[-1]) < 0.06


async def test_pcm_is_raw_16_bit_samples_of_the_right_length(sandbox):
    response = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}/with-timestamps",
                                             params={"output_format": "pcm_16000"},
                                             json={"text": "Hi there."})
    body = response.json()
    pcm = base64.b64decode(body["audio_base64"])
    duration = body["alignment"]["character_end_times_seconds"][-1]
    assert len(pcm) == 2 * round(duration * 16_000)
    assert any(pcm)


async def test_speed_and_voice_change_the_audio(sandbox):
    async def seconds(voice: str, speed: float) -> float:
        body = (await sandbox.elevenlabs.post(
            f"/v1/text-to-speech/{voice}/with-timestamps", params={"output_format": "pcm_8000"},
            json={"text": TEXT, "voice_settings": {"speed": speed}})).json()
        return body["alignment"]["character_end_times_seconds"][-1]

    assert await seconds(RACHEL, 1.2) < await seconds(RACHEL, 1.0) < await seconds(RACHEL, 0.7)
    rachel = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}",
                                           params={"output_format": "pcm_8000"},
                                           json={"text": TEXT})
    adam = await sandbox.elevenlabs.post("/v1/text-to-speech/pNInz6obpgDQGcFmaJgB",
                                         params={"output_format": "pcm_8000"},
                                         json={"text": TEXT})
    assert len(rachel.content) == len(adam.content)
    assert rachel.content != adam.content


async def test_voices_lists_the_premade_voices(sandbox):
    voices = (await sandbox.elevenlabs.get("/v1/voices")).json()["voices"]
    assert RACHEL in {v["voice_id"] for v in voices}
    assert all(v["category"] == "premade" for v in voices)


async def test_errors_keyless_unknown_voice_and_fastapi_422(sandbox):
    keyless = await sandbox.elevenlabs.get("/v1/voices", headers={"xi-api-key": ""})
    assert keyless.status_code == 401
    assert keyless.json()["detail"]["status"] == "invalid_api_key"
    unknown = await sandbox.elevenlabs.post("/v1/text-to-speech/noSuchVoice", json={"text": "x"})
    assert (unknown.status_code, unknown.json()["detail"]["status"]) == (404, "voice_not_found")
    bad_body = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}",
                                             json={"voice_settings": {"stability": 3}})
    assert bad_body.status_code == 422
    locations = [e["loc"] for e in bad_body.json()["detail"]]
    assert ["body", "text"] in locations
    assert ["body", "voice_settings", "stability"] in locations
    bad_format = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}",
                                               params={"output_format": "wav"}, json={"text": "x"})
    assert bad_format.status_code == 422
    assert bad_format.json()["detail"][0]["loc"] == ["query", "output_format"]
    not_json = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}", content=b"{")
    assert not_json.status_code == 422
    assert not_json.json()["detail"][0]["type"] == "json_invalid"


async def test_concurrency_over_the_plan_queues_briefly_then_429(config, sandbox):
    config.elevenlabs.plan = "free"
    config.elevenlabs.queue_s = 0.05
    config.set_latency("elevenlabs", Latency.fixed(300))
    responses = await asyncio.gather(*(
        sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}", params={
            "output_format": "pcm_8000"}, json={"text": f"clip {n}"}) for n in range(3)))
    assert sorted(r.status_code for r in responses) == [200, 200, 429]
    busy = next(r for r in responses if r.status_code == 429)
    assert busy.json()["detail"]["status"] == "too_many_concurrent_requests"
    assert {r.headers.get("maximum-concurrent-requests") for r in responses
            if r.status_code == 200} == {"2"}
    config.elevenlabs.queue_s = 1.0
    queued = await asyncio.gather(*(
        sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}", params={
            "output_format": "pcm_8000"}, json={"text": f"clip {n}"}) for n in range(3)))
    assert [r.status_code for r in queued] == [200, 200, 200]


async def test_character_quota_gives_401_quota_exceeded(config, sandbox):
    config.elevenlabs.character_quota = 12
    ok = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}",
                                       params={"output_format": "pcm_8000"},
                                       json={"text": "x" * 10})
    assert ok.status_code == 200
    over = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}",
                                         params={"output_format": "pcm_8000"}, json={"text": "xxx"})
    assert (over.status_code, over.json()["detail"]["status"]) == (401, "quota_exceeded")
