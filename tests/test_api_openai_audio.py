"""OpenAI transcription client: the multipart request, typed errors, caching; then the sandbox."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from opusclip_lib.api import (
    InvalidRequestError,
    MalformedResponseError,
    OpenAIClient,
    Transcription,
)
from opusclip_lib.media import load_transcript
from opusclip_lib.media.samples import sample_transcript, sample_video
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import Resilience
from opusclip_lib.resilience.cache import MemoryCache, RedisCache
from opusclip_lib.sandbox import SandboxConfig, build_app
from tests.audio_cuts import cut

KEY = "sk-test-0123456789abcdef"
VERBOSE = {"language": "english", "duration": 2.5, "text": "Hello there.",
           "words": [{"word": "Hello", "start": 0.1, "end": 0.6},
                     {"word": "there", "start": 0.6, "end": 1.2}],
           "segments": [{"id": 0, "seek": 0, "start": 0.1, "end": 1.2, "text": " Hello there.",
                         "tokens": [1, 2], "temperature": 0.0, "avg_logprob": -0.2,
                         "compression_ratio": 1.1, "no_speech_prob": 0.01}],
           "usage": {"type": "duration", "seconds": 3}}


class FakeWhisper:
    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.status = status
        self.body = VERBOSE if body is None else body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body, headers={"x-request-id": "req_1"})


def form_fields(request: httpx.Request) -> list[tuple[str, str]]:
    """(name, value or file name) of each multipart part, in order."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    fields = []
    for part in request.content.split(b"--" + boundary)[1:-1]:
        head = part.split(b"\r\n\r\n", 1)[0].decode()
        name = head.split('name="')[1].split('"')[0]
        value = (head.split('filename="')[1].split('"')[0] if "filename=" in head
                 else part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n").decode())
        fields.append((name, value))
    return fields


async def test_transcribe_sends_verbose_json_with_word_and_segment_timestamps() -> None:
    fake = FakeWhisper()
    recorder = Recorder()
    async with OpenAIClient(KEY, transport=httpx.MockTransport(fake), recorder=recorder) as ai:
        heard = await ai.transcribe(b"ID3 audio", filename="talk.mp3", language="en",
                                    prompt="asyncio, ffmpeg")
    assert isinstance(heard, Transcription)
    assert [w.word for w in heard.words] == ["Hello", "there"]
    assert heard.request_id == "req_1"
    request = fake.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/audio/transcriptions")
    assert form_fields(request) == [
        ("model", "whisper-1"), ("response_format", "verbose_json"), ("language", "en"),
        ("prompt", "asyncio, ffmpeg"), ("timestamp_granularities[]", "word"),
        ("timestamp_granularities[]", "segment"), ("file", "talk.mp3")]
    assert b"Content-Type: audio/mpeg\r\n\r\nID3 audio" in request.content
    [event] = recorder.events("http")
    assert event.name == "openai.audio.transcriptions"
    assert ai.usage.spent["audio_seconds"] == 2.5


async def test_audio_over_25_mb_is_refused_before_the_upload() -> None:
    fake = FakeWhisper()
    async with OpenAIClient(KEY, transport=httpx.MockTransport(fake)) as ai:
        with pytest.raises(InvalidRequestError, match="26,214,400") as caught:
            await ai.transcribe(bytes(26_214_401), filename="long.wav")
    assert caught.value.status_code == 413
    assert fake.requests == []


@pytest.mark.parametrize(("status", "body"), [
    (413, {"error": {"message": "Maximum content size limit (26214400) exceeded (26214401 bytes "
                                "read)", "type": "invalid_request_error", "param": None,
                     "code": None}}),
    (400, {"error": {"message": "Audio file might be corrupted or unsupported",
                     "type": "invalid_request_error", "param": "file", "code": "invalid_value"}}),
])
async def test_400_and_413_answers_raise_invalid_request(status: int, body: Any) -> None:
    async with OpenAIClient(KEY, transport=httpx.MockTransport(FakeWhisper(status, body))) as ai:
        with pytest.raises(InvalidRequestError, match=body["error"]["message"][:20]) as caught:
            await ai.transcribe(b"audio", filename="a.mp3")
    assert caught.value.status_code == status
    assert not caught.value.retryable


async def test_a_body_that_is_not_a_transcription_is_malformed() -> None:
    fake = FakeWhisper(body={"text": "no duration, no language"})
    async with OpenAIClient(KEY, transport=httpx.MockTransport(fake)) as ai:
        with pytest.raises(MalformedResponseError, match="Transcription"):
            await ai.transcribe(b"audio", filename="a.mp3")


async def test_the_same_audio_is_transcribed_once_and_other_audio_again() -> None:
    fake = FakeWhisper()
    policy = Resilience("openai", cache=MemoryCache())
    async with OpenAIClient(KEY, transport=httpx.MockTransport(fake), resilience=policy) as ai:
        first = await ai.transcribe(b"audio one", filename="a.mp3")
        again = await ai.transcribe(b"audio one", filename="a.mp3")
        await ai.transcribe(b"audio two", filename="a.mp3")
        await ai.transcribe(b"audio one", filename="a.mp3", language="de")
    assert again == first
    assert len(fake.requests) == 3


# --- against the sandbox ----------------------------------------------------------------------


def sandbox_client() -> OpenAIClient:
    return OpenAIClient(KEY, transport=httpx.ASGITransport(build_app(SandboxConfig())))


async def test_the_sandbox_hears_the_samples_own_words_in_a_chunk() -> None:
    start, seconds = 40.0, 8.0
    truth = [w for w in load_transcript(sample_transcript()).words
             if start <= w.middle < start + seconds]
    async with sandbox_client() as ai:
        heard = await ai.transcribe(cut(sample_video(), start, seconds), filename="chunk.mp3")
    assert [w.word for w in heard.words] == [w.text.strip(".,!?:;") for w in truth]
    assert heard.words[1].start == pytest.approx(truth[1].start - start, abs=0.05)
    assert heard.duration == pytest.approx(seconds, abs=0.1)


async def test_the_sandbox_refuses_audio_it_cannot_decode() -> None:
    async with sandbox_client() as ai:
        with pytest.raises(InvalidRequestError, match="corrupted") as caught:
            await ai.transcribe(b"this is not audio", filename="notes.mp3")
    assert (caught.value.status_code, caught.value.code) == (400, "invalid_value")


async def test_the_sandbox_names_the_file_format_it_refuses() -> None:
    async with sandbox_client() as ai:
        with pytest.raises(InvalidRequestError, match="Invalid file format") as caught:
            await ai.transcribe(cut(sample_video(), 0, 3), filename="notes.txt")
    assert "param: file" in caught.value.message


def test_verbose_json_sample_parses() -> None:
    assert Transcription.model_validate_json(json.dumps(VERBOSE)).segments[0].text == (
        " Hello there.")


async def test_a_transcript_cached_in_redis_is_shared_across_processes(redis) -> None:
    """A second client (another process, say) gets the transcript from Redis, not the API."""
    client, prefix = redis
    fakes = [FakeWhisper(), FakeWhisper()]
    heard = []
    for fake in fakes:
        policy = Resilience("openai", cache=RedisCache(client, prefix=prefix))
        async with OpenAIClient(KEY, transport=httpx.MockTransport(fake),
                                resilience=policy) as ai:
            heard.append(await ai.transcribe(b"the same audio", filename="a.mp3"))
    assert heard[1] == heard[0]
    assert [len(fake.requests) for fake in fakes] == [1, 0]
