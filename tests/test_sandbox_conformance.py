"""Every kind of sandbox response validates against the official spec of the API it imitates.

Specs come from ``shared/api-reference`` beside the repo (``OPUSCLIP_API_REFERENCE`` overrides):
OpenAI's OpenAPI 3.1 YAML, YouTube's discovery document (converted to JSON Schema below, with
objects closed so a misspelt field fails), ElevenLabs' OpenAPI JSON. Stability v2beta has no
offline spec: its schemas here are hand-written from BEHAVIOUR.md, and so are the error bodies the
other specs leave undefined (Google's error envelope, ElevenLabs' ``{"detail": {...}}``).
OpenAPI schemas are open by default, so :func:`undeclared_keys` also fails any response key the
spec never mentions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from opusclip_lib.media.samples import sample_video
from opusclip_lib.sandbox import SandboxClients, SandboxConfig, build_app, clients
from opusclip_lib.sandbox.openai_audio import KNOWN_FIELDS
from opusclip_lib.sandbox.openai_validation import KNOWN_PARAMS
from tests.audio_cuts import cut, tones

RACHEL = "21m00Tcm4TlvDq8ikWAM"
TRANSCRIPT = "\n".join(f"[{i * 5.0:.1f}-{i * 5 + 4.2:.1f}] line {i} of the talk about asyncio"
                       for i in range(12))
HIGHLIGHTS_SCHEMA = {
    "type": "object",
    "properties": {
        "clips": {"type": "array", "minItems": 2, "maxItems": 4, "items": {
            "type": "object",
            "properties": {"start": {"type": "number", "minimum": 0},
                           "end": {"type": "number", "minimum": 0},
                           "title": {"type": "string", "maxLength": 60},
                           "score": {"type": "integer", "minimum": 1, "maximum": 10},
                           "kind": {"enum": ["funny", "insight", "hook"]}},
            "required": ["start", "end", "title", "score", "kind"],
            "additionalProperties": False}},
        "summary": {"type": ["string", "null"]},
    },
    "required": ["clips", "summary"],
    "additionalProperties": False,
}
GOOGLE_ERROR = {  # hand-written from BEHAVIOUR.md: the discovery document has no error schema
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "errors"], "additionalProperties": False,
        "properties": {
            "code": {"type": "integer"}, "message": {"type": "string"},
            "status": {"type": "string"}, "details": {"type": "array"},
            "errors": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["message", "domain", "reason"],
                "properties": {"message": {"type": "string"}, "domain": {"type": "string"},
                               "reason": {"type": "string"}, "location": {"type": "string"},
                               "locationType": {"const": "parameter"}},
                "additionalProperties": False}},
        }}},
}
ELEVENLABS_ERROR = {  # hand-written from BEHAVIOUR.md: not in the ElevenLabs OpenAPI document
    "type": "object", "required": ["detail"], "additionalProperties": False,
    "properties": {"detail": {"type": "object", "required": ["status", "message"],
                              "additionalProperties": False,
                              "properties": {"status": {"type": "string"},
                                             "message": {"type": "string"}}}},
}
STABILITY_IMAGE_JSON = {  # hand-written from BEHAVIOUR.md (no offline v2beta spec)
    "type": "object", "required": ["image", "finish_reason", "seed"],
    "additionalProperties": False,
    "properties": {"image": {"type": "string", "contentEncoding": "base64", "minLength": 1},
                   "finish_reason": {"enum": ["SUCCESS", "CONTENT_FILTERED"]},
                   "seed": {"type": "integer", "minimum": 0, "maximum": 4294967294}},
}
STABILITY_ERROR = {  # hand-written from BEHAVIOUR.md (no offline v2beta spec)
    "type": "object", "required": ["id", "name", "errors"], "additionalProperties": False,
    "properties": {"id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                   "name": {"type": "string"},
                   "errors": {"type": "array", "minItems": 1, "items": {"type": "string"}}},
}
def _openapi_registry(uri: str, spec: dict[str, Any]) -> Registry:
    return Registry().with_resource(uri, Resource.from_contents(
        spec, default_specification=DRAFT202012))


def undeclared_keys(instance: Any, schemas: list[dict[str, Any]], root: dict[str, Any],
                    path: str = "$") -> list[str]:
    """Paths of object keys that no (reachable) schema declares; open objects are not checked."""
    flat = _flatten(schemas, root)
    found: list[str] = []
    if isinstance(instance, dict):
        is_open = any(s.get("additionalProperties") not in (None, False) for s in flat) or not any(
            "properties" in s for s in flat)
        for key, value in instance.items():
            subs = [s["properties"][key] for s in flat if key in s.get("properties", {})]
            if not subs and not is_open:
                found.append(f"{path}.{key}")
            found += undeclared_keys(value, subs, root, f"{path}.{key}") if subs else []
    elif isinstance(instance, list):
        items = [s["items"] for s in flat if isinstance(s.get("items"), dict)]
        for i, value in enumerate(instance):
            found += undeclared_keys(value, items, root, f"{path}[{i}]") if items else []
    return found


def _flatten(schemas: list[dict[str, Any]], root: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for schema in schemas:
        while "$ref" in schema:
            target: Any = root
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = target
        out.append(schema)
        for key in ("allOf", "anyOf", "oneOf"):
            out += _flatten(schema.get(key, []), root)
    return out


def assert_openapi(instance: Any, spec: dict[str, Any], uri: str, component: str,
                   documented_extras: frozenset[str] = frozenset()) -> None:
    """Valid against the component, and no key outside it except ``documented_extras`` (names
    that BEHAVIOUR.md shows in real responses though the spec snapshot predates them)."""
    pointer = f"#/components/schemas/{component}"
    jsonschema.Draft202012Validator({"$ref": f"{uri}{pointer}"},
                                    registry=_openapi_registry(uri, spec)).validate(instance)
    undeclared = undeclared_keys(instance, [{"$ref": pointer}], spec)
    assert [p for p in undeclared if p.rsplit(".", 1)[-1] not in documented_extras] == []


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxClients]:
    async with clients(build_app(SandboxConfig())) as opened:
        yield opened


async def test_youtube_videos_list_matches_discovery_schema(sandbox, youtube_validators):
    ids = "opusSample1,R-j_8U_m7aS,notAVideo00"
    full = await sandbox.youtube.get("/videos", params={
        "part": "snippet,contentDetails,statistics,status,player", "id": ids})
    bare = await sandbox.youtube.get("/videos", params={"part": "id", "id": ids})
    for response in (full, bare):
        assert response.status_code == 200
        youtube_validators["VideoListResponse"].validate(response.json())
    assert full.json()["pageInfo"] == {"totalResults": 2, "resultsPerPage": 2}


async def test_youtube_search_list_matches_discovery_schema(sandbox, youtube_validators):
    first = (await sandbox.youtube.get("/search", params={
        "part": "snippet", "q": "async", "type": "video", "maxResults": 10})).json()
    second = (await sandbox.youtube.get("/search", params={
        "part": "snippet", "q": "async", "type": "video", "maxResults": 10,
        "pageToken": first["nextPageToken"]})).json()
    ids_only = (await sandbox.youtube.get("/search", params={"part": "id", "q": "x"})).json()
    for body in (first, second, ids_only):
        youtube_validators["SearchListResponse"].validate(body)


async def test_youtube_errors_use_googles_envelope(sandbox):
    cases = [
        ("/videos", {"part": "snippet", "id": "x", "key": "invalid"}),
        ("/videos", {"part": "nonsense", "id": "x"}),
        ("/videos", {"part": "id", "id": ",".join(f"id{n}" for n in range(51))}),
        ("/search", {"part": "snippet", "pageToken": "garbage"}),
    ]
    for path, params in cases:
        response = await sandbox.youtube.get(path, params=params)
        assert response.status_code == 400, response.text
        jsonschema.validate(response.json(), GOOGLE_ERROR)


async def test_openai_completions_match_the_openapi_spec(sandbox, openai_spec):
    base = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You pick highlights."},
        {"role": "user", "content": f"Transcript:\n{TRANSCRIPT}"}]}
    structured = {**base, "response_format": {"type": "json_schema", "json_schema": {
        "name": "highlights", "schema": HIGHLIGHTS_SCHEMA, "strict": True}}}
    tools = {**base, "tool_choice": "required", "tools": [{"type": "function", "function": {
        "name": "save_clip", "parameters": HIGHLIGHTS_SCHEMA["properties"]["clips"]["items"]}}]}
    for body in (base, {**base, "n": 2, "max_tokens": 5}, structured, tools):
        response = await sandbox.openai.post("/chat/completions", json=body)
        assert response.status_code == 200, response.text
        assert_openapi(response.json(), openai_spec, "urn:openai",
                       "CreateChatCompletionResponse")
    content = json.loads(response.json()["choices"][0]["message"]["tool_calls"][0]
                         ["function"]["arguments"])
    jsonschema.validate(content, HIGHLIGHTS_SCHEMA["properties"]["clips"]["items"])


async def test_openai_errors_match_the_openapi_spec(sandbox, openai_spec):
    responses = [
        await sandbox.openai.post("/chat/completions", json={"model": "gpt-4o-mini"}),
        await sandbox.openai.post("/chat/completions", json={},
                                  headers={"authorization": "Bearer invalid-key"}),
    ]
    for response in responses:
        assert response.status_code in (400, 401)
        assert_openapi(response.json(), openai_spec, "urn:openai", "ErrorResponse")


async def test_openai_transcriptions_match_the_openapi_spec(sandbox, openai_spec):
    sample, other = cut(sample_video(), 20.0, 6.0), tones(((0.3, 1.5), (2.0, 3.1)))
    verbose = {"model": "whisper-1", "response_format": "verbose_json",
               "timestamp_granularities[]": ["word", "segment"]}
    for audio in (sample, other):
        response = await sandbox.openai.post("/audio/transcriptions", data=verbose,
                                             files={"file": ("audio.mp3", audio)})
        assert response.status_code == 200, response.text
        assert_openapi(response.json(), openai_spec, "urn:openai",
                       "CreateTranscriptionResponseVerboseJson")
    plain = await sandbox.openai.post("/audio/transcriptions", data={"model": "whisper-1"},
                                      files={"file": ("audio.mp3", sample)})
    assert_openapi(plain.json(), openai_spec, "urn:openai", "CreateTranscriptionResponseJson")
    for fields, audio in (({"model": "whisper-1", "temperature": "3"}, sample),
                          ({"model": "whisper-1"}, bytes(26_214_401))):
        error = await sandbox.openai.post("/audio/transcriptions", data=fields,
                                          files={"file": ("audio.mp3", audio)})
        assert error.status_code in (400, 413)
        assert_openapi(error.json(), openai_spec, "urn:openai", "ErrorResponse")


def test_the_sandbox_accepts_exactly_the_specs_transcription_fields(openai_spec):
    request = openai_spec["components"]["schemas"]["CreateTranscriptionRequest"]
    assert set(request["properties"]) == KNOWN_FIELDS


async def test_elevenlabs_responses_match_the_openapi_spec(sandbox, elevenlabs_spec):
    timed = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}/with-timestamps",
                                          json={"text": "Hello, world."})
    assert_openapi(timed.json(), elevenlabs_spec, "urn:elevenlabs",
                   "AudioWithTimestampsResponseModel")
    voices = await sandbox.elevenlabs.get("/v1/voices")
    assert_openapi(voices.json(), elevenlabs_spec, "urn:elevenlabs", "GetVoicesResponseModel")
    invalid = await sandbox.elevenlabs.post(f"/v1/text-to-speech/{RACHEL}", json={"txt": 1})
    assert invalid.status_code == 422
    assert_openapi(invalid.json(), elevenlabs_spec, "urn:elevenlabs", "HTTPValidationError",
                   documented_extras=frozenset({"input", "ctx"}))  # pydantic v2 FastAPI adds them
    for response in (
        await sandbox.elevenlabs.get("/v1/voices", headers={"xi-api-key": "invalid"}),
        await sandbox.elevenlabs.post("/v1/text-to-speech/nope", json={"text": "hi"}),
    ):
        assert response.status_code in (401, 404)
        jsonschema.validate(response.json(), ELEVENLABS_ERROR)


async def test_stability_json_mode_and_errors_match_behaviour_md(sandbox):
    ok = await sandbox.stability.post("/v2beta/stable-image/generate/core",
                                      data={"prompt": "a lighthouse"}, files={"none": ""},
                                      headers={"accept": "application/json"})
    jsonschema.validate(ok.json(), STABILITY_IMAGE_JSON)
    bad = await sandbox.stability.post("/v2beta/stable-image/generate/core",
                                       data={"seed": "-1"}, files={"none": ""})
    assert bad.status_code == 400
    jsonschema.validate(bad.json(), STABILITY_ERROR)


async def test_the_validators_reject_what_the_real_api_would_never_send(
        sandbox, youtube_validators, openai_spec):
    """Guards the guards: a closed discovery schema and the undeclared-key check both bite."""
    body = (await sandbox.youtube.get("/videos", params={
        "part": "snippet,statistics", "id": "opusSample1"})).json()
    video = body["items"][0]
    for mutate in (lambda v: v["statistics"].update(viewCount=5),
                   lambda v: v["snippet"].update(titel="typo"),
                   lambda v: v.update(kind="youtube#videoListResponse")):
        broken = json.loads(json.dumps(body))
        mutate(broken["items"][0])
        assert not youtube_validators["VideoListResponse"].is_valid(broken)
    assert youtube_validators["VideoListResponse"].is_valid(body)
    assert video["id"] == "opusSample1"
    completion = (await sandbox.openai.post("/chat/completions", json={
        "model": "m", "messages": [{"role": "user", "content": "hi"}]})).json()
    completion["choices"][0]["finish_reasons"] = "stop"
    assert undeclared_keys(completion, [{"$ref": "#/components/schemas/"
                                                 "CreateChatCompletionResponse"}],
                           openai_spec) == ["$.choices[0].finish_reasons"]


def test_the_sandbox_accepts_exactly_the_specs_chat_parameters(openai_spec):
    def properties(schema: dict[str, Any]) -> set[str]:
        found = set(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            found |= properties(_flatten([part], openai_spec)[0])
        return found

    spec_params = properties(openai_spec["components"]["schemas"]["CreateChatCompletionRequest"])
    assert spec_params == KNOWN_PARAMS


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "unavailable"])
async def test_injected_faults_keep_each_apis_error_shape(kind, openai_spec):
    config = SandboxConfig()
    config.inject("*", kind)
    async with clients(build_app(config)) as api:
        youtube = await api.youtube.get("/videos", params={"part": "id", "id": "x"})
        openai = await api.openai.post("/chat/completions", json={})
        stability = await api.stability.post("/v2beta/stable-image/generate/core")
        elevenlabs = await api.elevenlabs.get("/v1/voices")
    jsonschema.validate(youtube.json(), GOOGLE_ERROR)
    assert_openapi(openai.json(), openai_spec, "urn:openai", "ErrorResponse")
    jsonschema.validate(stability.json(), STABILITY_ERROR)
    jsonschema.validate(elevenlabs.json(), ELEVENLABS_ERROR)
