"""The fake OpenAI transcription endpoint: form checks, 413, formats, and what it hears."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from opusclip_lib.api import OpenAIClient, ServerError
from opusclip_lib.media import load_transcript
from opusclip_lib.media.samples import SAMPLE_TITLES, sample_transcript, sample_video
from opusclip_lib.sandbox import build_app, fingerprint, openai_audio
from tests.audio_cuts import cut, tones

WORD_TIMES = {"model": "whisper-1", "response_format": "verbose_json",
              "timestamp_granularities[]": ["word", "segment"]}


async def transcribe(sandbox: Any, audio: bytes, filename: str = "a.mp3", **fields: Any) -> Any:
    return await sandbox.openai.post("/audio/transcriptions", data=fields or WORD_TIMES,
                                     files={"file": (filename, audio)})


@pytest.mark.parametrize(("fields", "param", "code"), [
    ({"response_format": "json"}, "model", "missing_required_parameter"),
    ({"model": "whisper-1", "response_format": "yaml"}, "response_format", "invalid_value"),
    ({"model": "gpt-4o-transcribe", "response_format": "verbose_json"}, "response_format",
     "unsupported_value"),
    ({"model": "whisper-1", "timestamp_granularities[]": "word"}, "timestamp_granularities",
     "invalid_value"),
    ({"model": "whisper-1", "response_format": "verbose_json",
      "timestamp_granularities[]": "sentence"}, "timestamp_granularities", "invalid_value"),
    ({"model": "whisper-1", "temperature": "1.5"}, "temperature", "invalid_value"),
    ({"model": "whisper-1", "language": "english"}, "language", "invalid_language_format"),
    ({"model": "whisper-1", "speed": "2"}, None, None),
])
async def test_bad_forms_get_openais_400(sandbox, fields, param, code):
    response = await transcribe(sandbox, cut(sample_video(), 0, 2), **fields)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error", param, code)


async def test_a_request_without_a_file_is_a_400(sandbox):
    response = await sandbox.openai.post("/audio/transcriptions", data={"model": "whisper-1"},
                                         files={"other": ("x.txt", b"")})
    assert response.status_code == 400
    assert response.json()["error"]["param"] in ("file", None)


async def test_a_file_over_25_mib_is_a_413(sandbox):
    response = await transcribe(sandbox, bytes(26_214_401), filename="long.wav")
    assert response.status_code == 413
    assert "26214400" in response.json()["error"]["message"]


async def test_a_file_of_exactly_25_mib_is_read(sandbox):
    response = await transcribe(sandbox, bytes(26_214_400), filename="zeros.wav")
    assert response.status_code == 400  # read, then found to be no audio: not too large
    assert response.json()["error"]["message"].startswith("Audio file might be corrupted")


@pytest.mark.parametrize(("video_id", "start", "seconds"), [
    ("opusSample1", 61.37, 12.0), ("opusSample1", 3.3, 3.0), ("opusSample2", 17.02, 9.5),
    ("opusSample2", 44.4, 4.0)])
@pytest.mark.parametrize("fmt", ["mp3", "ogg", "wav", "m4a"])
async def test_a_chunk_of_a_sample_gets_its_true_words_whatever_the_codec(
        sandbox, fmt, video_id, start, seconds):
    truth = [w for w in load_transcript(sample_transcript(video_id)).words
             if start <= w.middle < start + seconds]
    response = await transcribe(sandbox, cut(sample_video(video_id), start, seconds, fmt),
                                filename=f"chunk.{fmt}")
    body = response.json()
    assert [w["word"] for w in body["words"]] == [w.text.strip(".,!?:;") for w in truth]
    name, _, offset = response.headers["x-sandbox-transcript"].partition("@")
    assert (name, float(offset)) == (video_id, pytest.approx(start, abs=0.06))
    starts = [w["start"] for w in body["words"][1:]]
    assert starts == pytest.approx([w.start - start for w in truth[1:]], abs=0.06)


@pytest.mark.parametrize("video_id", list(SAMPLE_TITLES))
async def test_a_whole_sample_gets_its_whole_transcript(sandbox, video_id):
    transcript = load_transcript(sample_transcript(video_id))
    response = await transcribe(sandbox, cut(sample_video(video_id), 0, 200, "mp3"),
                                filename="talk.mp3")
    body = response.json()
    assert body["text"] == " ".join(s.text for s in transcript.segments)
    assert len(body["segments"]) == len(transcript.segments)
    assert body["duration"] == pytest.approx(transcript.duration, abs=0.2)


async def test_too_short_a_stretch_to_recognise_gets_the_stand_in(sandbox):
    response = await transcribe(sandbox, cut(sample_video(), 40.0, 2.0), filename="short.mp3")
    assert response.headers["x-sandbox-transcript"] == "stand-in"


async def test_other_audio_gets_a_stand_in_on_its_voiced_spans(sandbox):
    spans = ((0.5, 2.0), (3.0, 4.5))
    response = await transcribe(sandbox, tones(spans, "wav"), filename="tones.wav")
    body = response.json()
    assert response.headers["x-sandbox-transcript"] == "stand-in"
    assert body["text"].startswith("This is a sandbox stand-in transcript")
    found = [edge for s in body["segments"] for edge in (s["start"], s["end"])]
    assert found == pytest.approx([edge for span in spans for edge in span], abs=0.06)
    inside = [any(a - 0.06 <= w["start"] < w["end"] <= b + 0.06 for a, b in spans)
              for w in body["words"]]
    assert all(inside)


async def test_the_stand_in_is_deterministic(sandbox):
    audio = tones(((0.2, 1.4),))
    first = (await transcribe(sandbox, audio, filename="t.mp3")).json()
    openai_audio._HEARD.clear()  # heard afresh, not remembered
    second = (await transcribe(sandbox, audio, filename="renamed.mp3")).json()
    assert first == second


async def test_the_same_upload_is_decoded_once(sandbox, monkeypatch):
    decoded = []

    async def counting_decode(audio: bytes) -> Any:
        decoded.append(len(audio))
        return await fingerprint.decode(audio)

    monkeypatch.setattr(openai_audio, "decode", counting_decode)
    audio = tones(((0.3, 1.1),), "wav")
    answers = [(await transcribe(sandbox, audio, filename=name)).json()
               for name in ("a.wav", "b.wav")]
    assert decoded == [len(audio)]
    assert answers[0] == answers[1]


async def test_text_srt_and_vtt_formats(sandbox):
    audio = cut(sample_video(), 0.0, 10.0, "wav")
    text = await transcribe(sandbox, audio, "a.wav", model="whisper-1", response_format="text")
    srt = await transcribe(sandbox, audio, "a.wav", model="whisper-1", response_format="srt")
    vtt = await transcribe(sandbox, audio, "a.wav", model="whisper-1", response_format="vtt")
    assert text.text == "Welcome to Async Python in Two Minutes. Today we turn one long video " \
        "into short vertical clips, and we do it with asyncio.\n"
    assert text.headers["content-type"].startswith("text/plain")
    assert srt.text.startswith("1\n00:00:00,600 --> 00:00:03,223\nWelcome to Async Python")
    assert vtt.text.startswith("WEBVTT\n\n00:00:00.600 --> 00:00:03.223\nWelcome")
    assert text.headers["x-request-id"].startswith("req_")


async def test_json_is_the_default_format(sandbox):
    response = await transcribe(sandbox, cut(sample_video(), 0.0, 4.0), model="whisper-1")
    assert set(response.json()) == {"text", "usage"}


async def test_granularities_choose_words_or_segments(sandbox):
    audio = cut(sample_video(), 0.0, 4.0)
    words = await transcribe(sandbox, audio, model="whisper-1", response_format="verbose_json",
                             **{"timestamp_granularities[]": "word"})
    default = await transcribe(sandbox, audio, model="whisper-1",
                               response_format="verbose_json")
    assert ("words" in words.json(), "segments" in words.json()) == (True, False)
    assert ("words" in default.json(), "segments" in default.json()) == (False, True)


async def test_transcriptions_need_a_key_and_count_against_the_request_limit(sandbox, config):
    config.openai.requests_per_minute = 1
    audio = cut(sample_video(), 0.0, 2.0)
    no_key = await sandbox.openai.post("/audio/transcriptions", data=WORD_TIMES,
                                       files={"file": ("a.mp3", audio)},
                                       headers={"authorization": ""})
    first = await transcribe(sandbox, audio)
    second = await transcribe(sandbox, audio)
    assert [r.status_code for r in (no_key, first, second)] == [401, 200, 429]


async def test_injected_faults_reach_the_transcription_route(config):
    config.inject("openai.audio.transcriptions", "server_error", times=1)
    transport = httpx.ASGITransport(build_app(config))
    async with OpenAIClient("sk-test", transport=transport) as ai:
        with pytest.raises(ServerError):
            await ai.transcribe(cut(sample_video(), 0.0, 4.0), filename="a.mp3")
        heard = await ai.transcribe(cut(sample_video(), 0.0, 4.0), filename="a.mp3")
    assert heard.words[0].word == "Welcome"
