"""Cassettes: replay through every transport, byte-exact binaries, keys filtered, misses loud.

``cassettes/test_cassettes/`` is recorded by running this file in record mode
(``python -m opusclip_lib.cassettes record test_cassettes``); every other test here sets its own
mode and records into ``tmp_path``, so the file passes in any mode.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from vcr.request import Request

from opusclip_lib import config
from opusclip_lib.api import APIError, YouTubeClient
from opusclip_lib.api.models import GeneratedImage, SpeechAudio, SpeechWithTimestamps, Video
from opusclip_lib.api.transport import TRANSPORT_VARIABLE
from opusclip_lib.cassettes import (
    REDACTED,
    CassetteMissError,
    RecordMode,
    canonical_body,
    cassette_path,
    record_mode,
    use_cassette,
)
from opusclip_lib.media import SAMPLE_VIDEO_ID, load_transcript, sample_transcript, sample_video
from opusclip_lib.offline import api_clients, usage_table
from opusclip_lib.record_cassettes import record, sources
from opusclip_lib.resilience import Resilience
from opusclip_lib.workflow import Services
from tests.audio_cuts import cut
from tests.test_no_secrets import find_secrets

FOLDER = "test_cassettes"
VOICE = "21m00Tcm4TlvDq8ikWAM"
FAKE_KEYS = {"youtube": "AIzaSyFAKE-youtube-key-0000000000000000",
             "openai": "sk-proj-FAKEopenaikey0000000000000000",
             "stability": "sk-FAKEstabilitykey00000000000000",
             "elevenlabs": "FAKEelevenlabskey0123456789abcdef"}
TRANSPORTS = ["aiohttp", "httpx-aiohttp", "httpx"]
MAX_CASSETTE_BYTES = 5 * 1024 * 1024
SEGMENTS = load_transcript(sample_transcript()).segments[:8]
AUDIO_START_S, AUDIO_SECONDS = 34.0, 5.0  # "The keyword await marks every place ..."


@dataclass
class Answers:
    videos: list[Video]
    found: list[str]
    highlights: list[Any]
    image: GeneratedImage
    speech: SpeechAudio
    timed: SpeechWithTimestamps
    voices: list[str]


async def call_each_client(api: Services) -> Answers:
    """One call of every client method the notebooks use."""
    videos = await api.youtube.videos([SAMPLE_VIDEO_ID])
    search = await api.youtube.search("asyncio", max_results=3)
    highlights = await api.openai.pick_highlights(SEGMENTS, 2)
    image = await api.stability.generate_core("a red fox reading a book", seed=11)
    speech = await api.elevenlabs.text_to_speech("Hello from the cassette.", VOICE,
                                                 output_format="mp3_44100_32")
    timed = await api.elevenlabs.text_to_speech_with_timestamps("Hi there.", VOICE,
                                                                output_format="mp3_44100_32")
    voices = await api.elevenlabs.voices()
    return Answers(videos, [item.id.video_id for item in search.items], highlights, image,
                   speech, timed, [voice.voice_id for voice in voices])  # type: ignore[union-attr]


def recorded_bodies(cassette: Path, path_part: str) -> list[bytes]:
    """Response bodies in the YAML file for requests whose URL contains ``path_part``."""
    interactions = yaml.safe_load(cassette.read_text())["interactions"]
    bodies = [i["response"]["body"]["string"] for i in interactions
              if path_part in i["request"]["uri"]]
    return [body if isinstance(body, bytes) else body.encode() for body in bodies]


def use(monkeypatch: pytest.MonkeyPatch, mode: str, directory: Path | None = None) -> None:
    monkeypatch.setenv("OPUSCLIP_RECORD", mode)
    if directory is not None:
        monkeypatch.setenv("OPUSCLIP_CASSETTE_DIR", str(directory))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_each_client_replays_from_its_cassette(monkeypatch: pytest.MonkeyPatch,
                                                     transport: str) -> None:
    monkeypatch.setenv(TRANSPORT_VARIABLE, transport)
    async with api_clients(FOLDER, "each_client") as api:
        answers = await call_each_client(api)
        usage = usage_table(api)
    assert answers.videos[0].snippet.title == "Async Python in Two Minutes"
    assert len(answers.found) == 3
    assert VOICE in answers.voices
    assert 1 <= len(answers.highlights) <= 2
    assert all(h.end <= SEGMENTS[-1].end for h in answers.highlights)  # within what was sent
    assert answers.timed.alignment is not None
    assert "".join(answers.timed.alignment.characters) == "Hi there."
    assert usage.loc["youtube", "spent"] == 101  # videos.list 1 + search.list 100 quota units
    assert usage["calls"].sum() == 7
    assert usage["failures"].sum() == 0


async def test_binary_bodies_replay_byte_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRANSPORT_VARIABLE, raising=False)  # the clients' default sender
    async with api_clients(FOLDER, "each_client") as api:
        answers = await call_each_client(api)
    assert answers.image.image.startswith(b"\x89PNG\r\n\x1a\n")
    assert answers.speech.audio[:3] == b"ID3" or answers.speech.audio[:2] == b"\xff\xfb"
    [png] = recorded_bodies(cassette_path(FOLDER, "each_client"), "/stable-image/generate/core")
    [mp3, timed] = recorded_bodies(cassette_path(FOLDER, "each_client"), "/v1/text-to-speech/")
    assert hashlib.sha256(answers.image.image).digest() == hashlib.sha256(png).digest()
    assert answers.speech.audio == mp3
    assert answers.timed.audio == base64.b64decode(json.loads(timed)["audio_base64"])


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_multipart_audio_upload_replays_byte_exact(monkeypatch: pytest.MonkeyPatch,
                                                           transport: str) -> None:
    """The form's boundary is new on every run; the canonical body matches it all the same."""
    monkeypatch.setenv(TRANSPORT_VARIABLE, transport)
    audio = cut(sample_video(), AUDIO_START_S, AUDIO_SECONDS)
    async with api_clients(FOLDER, "transcription") as api:
        heard = await api.openai.transcribe(audio, filename="await.mp3")
    assert [w.word for w in heard.words[:4]] == ["The", "keyword", "await", "marks"]
    [recorded] = recorded_bodies(cassette_path(FOLDER, "transcription"),
                                 "/audio/transcriptions")
    replayed = type(heard).model_validate_json(recorded)
    assert heard.model_dump_json(exclude={"request_id"}) == replayed.model_dump_json(
        exclude={"request_id"})
    recorded_yaml = cassette_path(FOLDER, "transcription").read_text()
    interactions = yaml.safe_load(recorded_yaml)["interactions"]
    [sent] = [i["request"]["body"] for i in interactions if "transcriptions" in i["request"]["uri"]]
    assert audio in (sent if isinstance(sent, bytes) else sent.encode("utf-8", "surrogateescape"))


@pytest.mark.skipif(record_mode() != "none", reason="a miss only happens on replay")
async def test_other_audio_is_a_miss_not_a_wrong_transcript() -> None:
    audio = cut(sample_video(), AUDIO_START_S + 1, AUDIO_SECONDS)
    with pytest.raises(CassetteMissError, match="bodies differ") as miss:
        async with api_clients(FOLDER, "transcription") as api:
            await api.openai.transcribe(audio, filename="await.mp3")
    assert '"name": "file", "sha256"' in str(miss.value)


async def test_compressed_answers_are_stored_decoded(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """Live services gzip their JSON; the cassette keeps it readable, replay gives the same."""
    body = json.dumps({"kind": "youtube#videoListResponse", "etag": "e1", "items": []}).encode()

    def gzipped(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=gzip.compress(body), headers={
            "content-type": "application/json", "content-encoding": "gzip"})

    monkeypatch.setenv("OPUSCLIP_CASSETTE_DIR", str(tmp_path))
    pages = []
    runs: list[tuple[RecordMode, httpx.AsyncBaseTransport | None]] = [
        ("live", httpx.MockTransport(gzipped)), ("none", None)]  # record, then replay
    for mode, transport in runs:
        with use_cassette("gzip", "page", mode=mode):
            async with YouTubeClient(FAKE_KEYS["youtube"], transport=transport) as youtube:
                pages.append(await youtube.videos_page([SAMPLE_VIDEO_ID]))
    [recorded] = yaml.safe_load((tmp_path / "gzip" / "page.yaml").read_text())["interactions"]
    assert recorded["response"]["body"]["string"] == body.decode()
    assert "content-encoding" not in recorded["response"]["headers"]
    assert pages[0] == pages[1]


async def test_keys_are_filtered_when_recording(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    use(monkeypatch, "sandbox", tmp_path)
    async with api_clients("keys", "fake", keys=FAKE_KEYS) as api:
        recorded = await call_each_client(api)
        # A key that leaks into a body (or an error message) is caught too, not only headers.
        await api.openai.chat([{"role": "user", "content": f"echo {FAKE_KEYS['openai']}"}])
    text = (tmp_path / "keys" / "fake.yaml").read_text()
    assert [key for key in FAKE_KEYS.values() if key in text] == []
    assert find_secrets(text) == []
    assert f"key={REDACTED}" in text
    assert f"xi-api-key:\n      - {REDACTED}" in text
    assert text.count(f"authorization:\n      - {REDACTED}") == 3  # OpenAI twice, Stability once
    assert f"openai-organization:\n      - {REDACTED}" in text
    # The placeholders match on replay whatever key is sent: none at all is needed.
    use(monkeypatch, "none")
    async with api_clients("keys", "fake") as api:
        replayed = await call_each_client(api)
    assert replayed.image.image == recorded.image.image
    assert replayed.speech.audio == recorded.speech.audio


async def test_account_headers_and_cookies_are_redacted(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    secret = "s3cr3t-account-value"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"object": "list", "data": []}, headers={
            "set-cookie": f"__cf_bm={secret}; path=/", "openai-organization": secret,
            "openai-project": secret})

    monkeypatch.setenv("OPUSCLIP_CASSETTE_DIR", str(tmp_path))
    with use_cassette("account", "headers", mode="live"):
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            await client.get("https://api.openai.com/v1/models", headers={
                "Authorization": f"Bearer {secret}", "OpenAI-Organization": secret,
                "OpenAI-Project": secret, "Cookie": f"session={secret}"})
    text = (tmp_path / "account" / "headers.yaml").read_text()
    assert secret not in text
    assert text.count(REDACTED) == 7


async def test_unrecorded_request_raises_with_how_to_record(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    use(monkeypatch, "sandbox", tmp_path)
    async with api_clients("misses", "one_video") as api:
        await api.youtube.videos([SAMPLE_VIDEO_ID])
    recorded = (tmp_path / "misses" / "one_video.yaml").read_bytes()
    use(monkeypatch, "none")
    # The resilience layer (retries, breaker, stale cache, fallbacks) must not hide a miss.
    with pytest.raises(CassetteMissError) as miss:
        async with api_clients("misses", "one_video", resilience=True) as api:
            await api.youtube.videos([SAMPLE_VIDEO_ID])
            await api.youtube.videos(["R-j_8U_m7aS"])
    policy = api.youtube.resilience
    assert isinstance(policy, Resilience)
    assert (policy.stats.attempts, policy.stats.fallbacks) == (2, 0)  # one each: no retry
    message = str(miss.value)
    assert "GET https://www.googleapis.com/youtube/v3/videos?id=R-j_8U_m7aS&key=REDACTED" in message
    record_command = "OPUSCLIP_RECORD=sandbox .venv/bin/python -m opusclip_lib.cassettes record"
    assert f"{record_command} misses" in message
    assert "OPUSCLIP_RECORD=live" in message
    assert "YOUTUBE_API_KEY" in message
    assert "differs in query" in message
    # Replay never writes: not after a miss, not after a block that played only part of it.
    async with api_clients("misses", "one_video"):
        pass
    assert (tmp_path / "misses" / "one_video.yaml").read_bytes() == recorded
    # Inside a TaskGroup the miss arrives in an ExceptionGroup; it still comes out as itself.
    with pytest.raises(CassetteMissError, match=r"misses/never_recorded\.yaml does not exist"):
        async with api_clients("misses", "never_recorded") as api, asyncio.TaskGroup() as tasks:
            tasks.create_task(api.openai.chat([{"role": "user", "content": "hello"}]))


async def test_an_api_error_is_recorded_and_replayed(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    use(monkeypatch, "sandbox", tmp_path)
    errors = []
    for mode in ("sandbox", "none"):
        use(monkeypatch, mode)
        async with api_clients("errors", "bad_key", keys={"openai": "invalid-key-0123"}) as api:
            with pytest.raises(APIError) as error:
                await api.openai.chat([{"role": "user", "content": "hello"}])
        errors.append((type(error.value).__name__, error.value.status_code,
                       error.value.request_id))
    assert errors[0] == errors[1]
    assert errors[0][:2] == ("AuthenticationError", 401)
    assert errors[0][2]  # the request id survives the cassette


@pytest.mark.looptime
async def test_latency_paces_the_replay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Replay waits the recorded latency per call, so concurrent calls overlap as they did.

    On looptime's fake loop clock, only the waits count: three overlapping calls take one
    latency, where one after another would take three."""
    latency_s = {"youtube": 0.2}
    loop = asyncio.get_running_loop()
    durations = []
    for mode in ("sandbox", "none"):
        use(monkeypatch, mode, tmp_path)
        async with api_clients("paced", "three_calls", latency_s=latency_s) as api:
            started = loop.time()
            async with asyncio.TaskGroup() as tasks:
                for query in ("asyncio", "httpx", "sqlite"):
                    tasks.create_task(api.youtube.search(query, max_results=1))
            durations.append(loop.time() - started)
    assert durations == [pytest.approx(0.2), pytest.approx(0.2)]


def test_canonical_body_ignores_key_order_boundaries_and_empty_bodies() -> None:
    def request(body: bytes | None, content_type: str | None = None) -> Request:
        headers = {"Content-Type": content_type} if content_type else {}
        return Request("POST", "https://api.example/x", body, headers)

    json_type = "application/json"
    assert canonical_body(request(b'{"b": 1, "a": [1, 2]}', json_type)) == canonical_body(
        request(b'{"a":[1,2],"b":1}', json_type))
    assert canonical_body(request(b'{"a": 1}', json_type)) != canonical_body(
        request(b'{"a": 2}', json_type))
    forms = [httpx.Request("POST", "https://api.example/x", files={"prompt": (None, "a fox")})
             for _ in range(2)]
    assert forms[0].read() != forms[1].read()  # httpx draws a new boundary every time
    canonical = [canonical_body(request(form.read(), form.headers["Content-Type"]))
                 for form in forms]
    assert canonical[0] == canonical[1]
    assert b"a fox" in canonical[0]
    assert canonical_body(request(None)) == canonical_body(request(b"")) == b""


def test_canonical_multipart_names_each_part_and_hashes_files() -> None:
    def canonical(audio: bytes, model: str = "whisper-1") -> bytes:
        form = httpx.Request("POST", "https://api.example/x", files=[
            ("model", (None, model)), ("file", ("a.mp3", audio, "audio/mpeg"))])
        return canonical_body(Request("POST", str(form.url), form.read(),
                                      {"Content-Type": form.headers["Content-Type"]}))

    audio = bytes(range(256)) * 1000  # binary, with CR LF and dashes inside
    assert canonical(audio) == canonical(audio)
    assert canonical(audio) != canonical(audio[:-1])
    assert canonical(audio) != canonical(audio, model="gpt-4o-transcribe")
    lines = [json.loads(line) for line in canonical(audio).splitlines()]
    assert lines == [{"name": "model", "value": "whisper-1"},
                     {"name": "file", "filename": "a.mp3", "content_type": "audio/mpeg",
                      "bytes": "256000", "sha256": hashlib.sha256(audio).hexdigest()}]


shipped_only = pytest.mark.skipif(record_mode() != "none",
                                  reason="checks the shipped cassettes, not a recording run")


@shipped_only
def test_shipped_cassettes_fit_in_5_mb() -> None:
    shipped = [p for p in (config.PROJECT_ROOT / "cassettes").rglob("*") if p.is_file()]
    assert shipped, "no cassettes shipped"
    assert sum(p.stat().st_size for p in shipped) < MAX_CASSETTE_BYTES


@pytest.mark.slow
def test_record_command_records_then_replays_a_source(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    """The command runs the file that uses a folder, installs the folder, replays it."""
    source = tmp_path / "tiny_source.py"
    source.write_text(
        "import asyncio\n"
        "from opusclip_lib.offline import api_clients\n\n"
        "async def main():\n"
        "    async with api_clients('tiny_source', 'one') as api:\n"
        "        print(await api.youtube.videos(['opusSample1']))\n\n"
        "asyncio.run(main())\n")
    library = tmp_path / "library"
    use(monkeypatch, "none", library)
    (library / "tiny_source").mkdir(parents=True)
    (library / "tiny_source" / "stale.yaml").write_text("interactions: []\n")
    record("tiny_source", source, "sandbox")  # records, installs, then replays as a check
    assert sorted(p.name for p in (library / "tiny_source").iterdir()) == ["one.yaml"]
    assert "opusSample1" in cassette_path("tiny_source", "one").read_text()


@shipped_only
def test_every_file_that_uses_cassettes_is_recorded_by_the_command() -> None:
    found = sources()
    assert found[FOLDER] == Path(__file__).resolve()
    assert {"20_api_basics", "24_api_video_pipeline"} <= set(found)
    shipped = {p.name for p in (config.PROJECT_ROOT / "cassettes").iterdir() if p.is_dir()}
    assert shipped == set(found), "a cassette folder without a source, or the reverse"
