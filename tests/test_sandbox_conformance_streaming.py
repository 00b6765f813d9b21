"""The sandbox's streaming and SDK-facing routes validate against the official specs.

Same rules as ``test_sandbox_conformance.py`` (whose helpers this reuses): OpenAI's OpenAPI
document, ElevenLabs' OpenAPI and AsyncAPI documents, YouTube's discovery document; Stability's
job shapes are hand-written from BEHAVIOUR.md (no offline v2beta spec).
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import re
import uuid
from datetime import date, datetime, time
from typing import Any

import jsonschema
import pytest
import yaml
from PIL import Image

from opusclip_lib.api import ElevenLabsClient, SSEDecoder
from opusclip_lib.sandbox import SandboxConfig, build_app, clients, serve
from tests.api_specs import api_reference
from tests.test_sandbox_conformance import (
    GOOGLE_ERROR,
    STABILITY_ERROR,
    assert_openapi,
)

RACHEL = "21m00Tcm4TlvDq8ikWAM"
MESSAGES = [{"role": "user", "content": "Stream a short answer about asyncio"}]
STABILITY_STARTED = {"type": "object", "required": ["id"], "additionalProperties": False,
                     "properties": {"id": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}
STABILITY_IN_PROGRESS = {"type": "object", "required": ["id", "status"],
                         "additionalProperties": False,
                         "properties": {"id": {"type": "string"},
                                        "status": {"const": "in-progress"}}}
FORMATS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["at", "day", "clock", "lasts", "mail", "host", "v4", "v6", "id", "code"],
    "properties": {"at": {"type": "string", "format": "date-time"},
                   "day": {"type": "string", "format": "date"},
                   "clock": {"type": "string", "format": "time"},
                   "lasts": {"type": "string", "format": "duration"},
                   "mail": {"type": "string", "format": "email"},
                   "host": {"type": "string", "format": "hostname"},
                   "v4": {"type": "string", "format": "ipv4"},
                   "v6": {"type": "string", "format": "ipv6"},
                   "id": {"type": "string", "format": "uuid"},
                   "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"}},
}
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,}$")
DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")


@pytest.fixture
async def sandbox():
    config = SandboxConfig.unlimited()
    config.stability.job_s = 0
    async with clients(build_app(config)) as opened:
        yield opened


def with_nullable(schema: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` (which the chunk schema still uses inside a 3.1
    document) as JSON Schema: ``null`` added to ``type`` and ``enum``."""
    if isinstance(schema, list):
        return [with_nullable(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: with_nullable(value) for key, value in schema.items()}
    if out.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def sse_payloads(body: bytes) -> list[str]:
    return [event.data for event in SSEDecoder().feed(body)]


async def test_streamed_chunks_match_the_stream_response_schema(sandbox, openai_spec):
    response = await sandbox.openai.post("/chat/completions", json={
        "model": "gpt-4o-mini", "messages": MESSAGES, "stream": True,
        "stream_options": {"include_usage": True}})
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response.content)
    assert payloads[-1] == "[DONE]"
    spec = with_nullable(openai_spec)
    for payload in payloads[:-1]:
        assert_openapi(json.loads(payload), spec, "urn:openai",
                       "CreateChatCompletionStreamResponse")
    assert json.loads(payloads[-2])["choices"] == []


async def test_models_and_responses_match_the_spec(sandbox, openai_spec):
    listed = await sandbox.openai.get("/models")
    assert_openapi(listed.json(), openai_spec, "urn:openai", "ListModelsResponse")
    one = await sandbox.openai.get("/models/gpt-4o-mini")
    assert_openapi(one.json(), openai_spec, "urn:openai", "Model")
    answered = await sandbox.openai.post("/responses", json={
        "model": "gpt-4o-mini", "input": "hello", "text": {"format": {
            "type": "json_schema", "name": "formats", "schema": FORMATS_SCHEMA,
            "strict": True}}})
    assert answered.status_code == 200, answered.text
    assert_openapi(answered.json(), openai_spec, "urn:openai", "Response",
                   documented_extras=frozenset({"user", "store", "text", "top_p",
                                                "temperature", "previous_response_id"}))
    missing = await sandbox.openai.get("/models/nope")
    assert_openapi(missing.json(), openai_spec, "urn:openai", "ErrorResponse")


async def test_structured_answers_honour_string_formats_and_pattern(sandbox):
    response = await sandbox.openai.post("/chat/completions", json={
        "model": "gpt-4o-mini", "messages": MESSAGES, "response_format": {
            "type": "json_schema", "json_schema": {"name": "formats", "schema": FORMATS_SCHEMA,
                                                   "strict": True}}})
    answer = json.loads(response.json()["choices"][0]["message"]["content"])
    datetime.fromisoformat(answer["at"])
    date.fromisoformat(answer["day"])
    time.fromisoformat(answer["clock"])
    ipaddress.IPv4Address(answer["v4"])
    ipaddress.IPv6Address(answer["v6"])
    uuid.UUID(answer["id"])
    assert DURATION.match(answer["lasts"]), answer["lasts"]
    assert HOSTNAME.match(answer["host"]), answer["host"]
    assert re.match(r"^[^@\s]+@[^@\s]+\.[a-z]+$", answer["mail"]), answer["mail"]
    assert re.fullmatch(FORMATS_SCHEMA["properties"]["code"]["pattern"], answer["code"])


async def test_unknown_routes_answer_each_services_error_shape(sandbox, openai_spec):
    openai = await sandbox.openai.get("/no/such/route")
    youtube = await sandbox.youtube.get("/noSuchResource")
    stability = await sandbox.stability.get("/v2beta/no-such-route")
    elevenlabs = await sandbox.elevenlabs.get("/v1/no-such-route")
    for response in (openai, youtube, stability, elevenlabs):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
    assert_openapi(openai.json(), openai_spec, "urn:openai", "ErrorResponse")
    jsonschema.validate(youtube.json(), GOOGLE_ERROR)
    jsonschema.validate(stability.json(), STABILITY_ERROR)
    assert elevenlabs.json() == {"detail": "Not Found"}  # FastAPI's own 404


async def test_elevenlabs_voice_routes_match_the_spec(sandbox, elevenlabs_spec):
    page = await sandbox.elevenlabs.get("/v2/voices", params={"page_size": 3})
    assert_openapi(page.json(), elevenlabs_spec, "urn:elevenlabs", "GetVoicesV2ResponseModel")
    one = await sandbox.elevenlabs.get(f"/v1/voices/{RACHEL}")
    assert_openapi(one.json(), elevenlabs_spec, "urn:elevenlabs", "VoiceResponseModel")
    streamed = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}/stream",
                                             json={"text": "Hello."})
    assert streamed.headers["content-type"] == "audio/mpeg"
    assert "content-length" not in streamed.headers  # chunked, as a stream is


async def test_websocket_messages_match_the_asyncapi_document():
    spec = yaml.safe_load((api_reference() / "elevenlabs-asyncapi.yml").read_text())
    schemas = spec["components"]["schemas"]
    recorded: list[dict[str, Any]] = []
    async with (serve(SandboxConfig.unlimited()) as urls,
                ElevenLabsClient("xi-test", base_url=urls.elevenlabs,
                                 output_format="pcm_16000") as tts,
                tts.speech_socket(RACHEL) as speech):
        socket = speech.socket
        await speech.send("Hello world. ", flush=True)
        await speech.finish()
        while not recorded or not recorded[-1].get("isFinal"):
            recorded.append(json.loads((await socket.receive(timeout=20)).data))
    audio, final = recorded[:-1], recorded[-1]
    for message in audio:
        assert set(message) <= set(schemas["AudioOutput"]["properties"]) | {"isFinal"}
        assert set(message["alignment"]) == set(schemas["Alignment"]["properties"])
        base64.b64decode(message["audio"], validate=True)
    assert set(final) == set(schemas["FinalOutput"]["properties"])


async def test_stability_job_shapes_follow_behaviour_md(sandbox):
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="PNG")
    started = await sandbox.stability.post(
        "/v2beta/stable-image/upscale/creative", data={"prompt": "sharper"},
        files={"image": ("in.png", buffer.getvalue(), "image/png")})
    jsonschema.validate(started.json(), STABILITY_STARTED)
    done = await sandbox.stability.get(f"/v2beta/results/{started.json()['id']}",
                                       headers={"accept": "application/json"})
    assert done.status_code == 200
    assert sorted(done.json()) == ["finish_reason", "image", "seed"]
    missing = await sandbox.stability.get("/v2beta/results/" + "0" * 64)
    assert missing.status_code == 404
    jsonschema.validate(missing.json(), STABILITY_ERROR)


async def test_stability_in_progress_answer_is_202_with_its_status():
    config = SandboxConfig.unlimited()
    config.stability.job_s = 3600
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="PNG")
    async with clients(build_app(config)) as api:
        started = await api.stability.post(
            "/v2beta/stable-image/upscale/creative", data={"prompt": "sharper"},
            files={"image": ("in.png", buffer.getvalue(), "image/png")})
        pending = await api.stability.get(f"/v2beta/results/{started.json()['id']}")
    assert pending.status_code == 202
    jsonschema.validate(pending.json(), STABILITY_IN_PROGRESS)


async def test_youtube_repeated_parameters_and_fields_match_discovery(sandbox,
                                                                      youtube_validators):
    repeated = await sandbox.youtube.get("/videos", params=[
        ("part", "snippet"), ("part", "statistics"), ("id", "opusSample1"),
        ("id", "R-j_8U_m7aS")])
    body = repeated.json()
    youtube_validators["VideoListResponse"].validate(body)
    assert [item["id"] for item in body["items"]] == ["opusSample1", "R-j_8U_m7aS"]
    assert all({"snippet", "statistics"} <= set(item) for item in body["items"])
    partial = await sandbox.youtube.get("/videos", params={
        "part": "snippet", "id": "opusSample1", "fields": "etag,items(id,snippet(title,tags))"})
    youtube_validators["VideoListResponse"].validate(partial.json())
    assert set(partial.json()) == {"etag", "items"}
    assert set(partial.json()["items"][0]["snippet"]) == {"title", "tags"}
    broken = await sandbox.youtube.get("/videos", params={
        "part": "snippet", "id": "opusSample1", "fields": "items(id"})
    assert broken.status_code == 400
    jsonschema.validate(broken.json(), GOOGLE_ERROR)
