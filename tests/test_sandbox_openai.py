"""The fake OpenAI chat completions: auth, validation, rate limits, seeded structured output."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from opusclip_lib.sandbox.openai_chat import go_duration

TRANSCRIPT = "\n".join(f"[{i * 6.0:.1f}-{i * 6 + 5.5:.1f}] sentence {i} about event loops"
                       for i in range(10))
CLIPS_SCHEMA = {
    "type": "object",
    "properties": {"clips": {"type": "array", "minItems": 3, "maxItems": 5, "items": {
        "type": "object",
        "properties": {"start_seconds": {"type": "number"}, "end_seconds": {"type": "number"},
                       "text": {"type": "string"}, "virality": {"type": "integer",
                                                                "minimum": 1, "maximum": 5}},
        "required": ["start_seconds", "end_seconds", "text", "virality"],
        "additionalProperties": False}}},
    "required": ["clips"],
    "additionalProperties": False,
}


def chat(content: str = "Hello there", **extra: object) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}


def structured(schema: dict[str, object], *, strict: bool = True) -> dict[str, object]:
    return {"type": "json_schema",
            "json_schema": {"name": "clips", "schema": schema, "strict": strict}}


async def test_success_headers(sandbox):
    response = await sandbox.openai.post("/chat/completions", json=chat())
    assert response.status_code == 200
    headers = response.headers
    assert re.fullmatch(r"req_[0-9a-f]{32}", headers["x-request-id"])
    assert headers["openai-version"] == "2020-10-01"
    assert headers["openai-processing-ms"].isdigit()
    for kind in ("requests", "tokens"):
        assert headers[f"x-ratelimit-limit-{kind}"].isdigit()
        assert headers[f"x-ratelimit-remaining-{kind}"].isdigit()
        assert re.fullmatch(r"(\d+h)?(\d+m)?[\d.]+m?s", headers[f"x-ratelimit-reset-{kind}"])
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


async def test_answers_are_deterministic_per_request(sandbox):
    first = (await sandbox.openai.post("/chat/completions", json=chat("Why asyncio?"))).json()
    again = (await sandbox.openai.post("/chat/completions", json=chat("Why asyncio?"))).json()
    other = (await sandbox.openai.post("/chat/completions", json=chat("Why threads?"))).json()
    content = [b["choices"][0]["message"]["content"] for b in (first, again, other)]
    assert content[0] == content[1] != content[2]
    assert first["id"] != again["id"]


async def test_structured_output_validates_and_cuts_clips_from_the_transcript(sandbox):
    request = chat(f"Pick highlights from:\n{TRANSCRIPT}", response_format=structured(CLIPS_SCHEMA))
    body = (await sandbox.openai.post("/chat/completions", json=request)).json()
    clips = json.loads(body["choices"][0]["message"]["content"])
    jsonschema.validate(clips, CLIPS_SCHEMA)
    bounds = {float(a) for a in re.findall(r"\[([\d.]+)-", TRANSCRIPT)} | {
        float(b) for b in re.findall(r"-([\d.]+)\]", TRANSCRIPT)}
    previous_end = -1.0
    for clip in clips["clips"]:
        assert clip["start_seconds"] in bounds
        assert clip["end_seconds"] in bounds
        assert previous_end <= clip["start_seconds"] < clip["end_seconds"]
        assert "event loops" in clip["text"]
        previous_end = clip["end_seconds"]


async def test_schema_filler_honours_types_bounds_enums_and_refs(sandbox):
    schema = {
        "type": "object", "additionalProperties": False,
        "required": ["tags", "mood", "ratio", "when", "nested", "maybe", "flag"],
        "properties": {
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 12},
                     "minItems": 2, "maxItems": 2},
            "mood": {"enum": ["calm", "tense"]},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "when": {"type": "string", "format": "date-time"},
            "nested": {"$ref": "#/$defs/point"},
            "maybe": {"anyOf": [{"type": "integer", "minimum": 10, "maximum": 12},
                                {"type": "null"}]},
            "flag": {"type": "boolean"},
        },
        "$defs": {"point": {"type": "object", "additionalProperties": False,
                            "required": ["x"], "properties": {"x": {"type": "integer"}}}},
    }
    for seed in range(5):
        body = (await sandbox.openai.post("/chat/completions", json=chat(
            f"seed {seed}", response_format=structured(schema)))).json()
        jsonschema.validate(json.loads(body["choices"][0]["message"]["content"]), schema)


async def test_tool_calls_carry_arguments_for_the_function_schema(sandbox):
    parameters = CLIPS_SCHEMA["properties"]["clips"]["items"]
    body = (await sandbox.openai.post("/chat/completions", json=chat(
        TRANSCRIPT, tools=[{"type": "function", "function": {"name": "save_clip",
                                                             "parameters": parameters}}],
    ))).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "save_clip"
    jsonschema.validate(json.loads(call["function"]["arguments"]), parameters)


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(sandbox):
    body = (await sandbox.openai.post("/chat/completions", json=chat(max_tokens=2))).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(("body", "param", "code", "fragment"), [
    ({"messages": [{"role": "user", "content": "x"}]}, None, None,
     "you must provide a model parameter"),
    ({"model": "m"}, "messages", "missing_required_parameter", "'messages'"),
    ({"model": "m", "messages": []}, "messages", "empty_array", "empty array"),
    (chat(temperature=3), "temperature", "decimal_above_max_value", "<= 2"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role",
     "invalid_value", "'robot'"),
    (chat(frobnicate=1), None, None, "Unrecognized request argument supplied: frobnicate"),
    (chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
     "response_format.json_schema.name", "missing_required_parameter", "name"),
    (chat(response_format={"type": "json_schema", "json_schema": {"name": "clips\n",
                                                                  "schema": {}}}),
     "response_format.json_schema.name", "invalid_value", "does not match pattern"),
    (chat(response_format=structured({"type": "object", "properties": {"a": {"type": "string"}},
                                      "required": ["a"]})),
     "response_format", "invalid_json_schema", "'additionalProperties' is required"),
    (chat(response_format={"type": "json_object"}), "messages", None, "json"),
])
async def test_invalid_bodies_are_400_with_param(sandbox, body, param, code, fragment):
    response = await sandbox.openai.post("/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert fragment in error["message"]


async def test_unparseable_json_is_a_400(sandbox):
    response = await sandbox.openai.post("/chat/completions", content=b"{not json",
                                         headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "could not parse" in response.json()["error"]["message"]


async def test_bad_or_missing_key_is_401(sandbox):
    bad = await sandbox.openai.post("/chat/completions", json=chat(),
                                    headers={"authorization": "Bearer invalid-key-123456"})
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_api_key"
    assert "inv" in bad.json()["error"]["message"]
    assert "invalid-key-123456" not in bad.text
    missing = await sandbox.openai.post("/chat/completions", json=chat(),
                                        headers={"authorization": ""})
    assert missing.status_code == 401
    assert missing.json()["error"]["message"].startswith("You didn't provide an API key")


async def test_requests_per_minute_limit_gives_429_with_retry_headers(config, sandbox):
    config.openai.requests_per_minute = 2
    assert (await sandbox.openai.post("/chat/completions", json=chat())).status_code == 200
    second = await sandbox.openai.post("/chat/completions", json=chat())
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    limited = await sandbox.openai.post("/chat/completions", json=chat())
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
    wait = re.search(r"Please try again in ([\dhms.]+)\.$", error["message"]).group(1)
    assert wait.endswith("s")
    assert int(limited.headers["retry-after"]) >= 1
    assert 0 < int(limited.headers["retry-after-ms"]) <= 30_000
    assert limited.headers["x-ratelimit-limit-requests"] == "2"


async def test_tokens_per_minute_limit_counts_prompt_and_max_tokens(config, sandbox):
    config.openai.tokens_per_minute = 1_000
    ok = await sandbox.openai.post("/chat/completions", json=chat("x" * 400, max_tokens=500))
    assert ok.status_code == 200
    limited = await sandbox.openai.post("/chat/completions", json=chat("x" * 400, max_tokens=500))
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "tokens"


@pytest.mark.parametrize(("seconds", "text"), [
    (0.012, "12ms"), (1.2, "1.2s"), (360, "6m0s"), (432, "7m12s"), (3723.5, "1h2m3.5s"), (0, "0s"),
])
def test_go_durations(seconds, text):
    assert go_duration(seconds) == text
