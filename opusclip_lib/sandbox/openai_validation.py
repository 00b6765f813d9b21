"""Request checks for the fake OpenAI chat completions, worded like the real 400s.

Only what a learner is likely to hit is checked (required fields, roles, ranges, unknown
parameters, ``response_format`` and Structured Outputs' strict-schema rules); the first problem
found is reported, with ``param`` and ``code`` as OpenAI sets them.
"""

from __future__ import annotations

import re
from typing import Any

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
KNOWN_PARAMS = frozenset((
    "audio frequency_penalty function_call functions logit_bias logprobs max_completion_tokens "
    "max_tokens messages metadata modalities model moderation n parallel_tool_calls prediction "
    "presence_penalty prompt_cache_key prompt_cache_options prompt_cache_retention "
    "reasoning_effort response_format safety_identifier seed service_tier stop store stream "
    "stream_options temperature tool_choice tools top_logprobs top_p user verbosity "
    "web_search_options").split())
"""Every property of ``CreateChatCompletionRequest`` in the OpenAPI spec; anything else is a 400."""
RANGES = {"temperature": (0, 2), "top_p": (0, 1), "frequency_penalty": (-2, 2),
          "presence_penalty": (-2, 2)}
INTEGER_MINIMUMS = {"n": 1, "max_tokens": 1, "max_completion_tokens": 1}
SCHEMA_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # fullmatch: "$" would let "name\n" pass
BAD_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what "
            "was sent was not valid JSON. If you have trouble figuring out how to fix this, please "
            "contact us through our help center at help.openai.com.)")

class OpenAIError(Exception):
    """``{"error": {message, type, param, code}}`` with the status and extra headers to send."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        self.headers = headers or {}


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string",
             list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), "an unknown type")


def _missing(param: str) -> OpenAIError:
    return OpenAIError(400, f"Missing required parameter: '{param}'.", param=param,
                       code="missing_required_parameter")


def _invalid_type(param: str, expected: str, value: Any) -> OpenAIError:
    return OpenAIError(400, f"Invalid type for '{param}': expected {expected}, but got "
                       f"{_kind(value)} instead.", param=param, code="invalid_type")


def _invalid_value(param: str, value: Any, allowed: tuple[str, ...]) -> OpenAIError:
    listed = ", ".join(f"'{a}'" for a in allowed[:-1]) + f", and '{allowed[-1]}'"
    return OpenAIError(400, f"Invalid value: '{value}'. Supported values are: {listed}.",
                       param=param, code="invalid_value")


def validate(body: Any) -> dict[str, Any]:
    """The request if it is acceptable, else the 400 the real API gives for its first problem."""
    if not isinstance(body, dict):
        raise OpenAIError(400, BAD_JSON)
    unknown = sorted(set(body) - KNOWN_PARAMS)
    if unknown:
        raise OpenAIError(400, f"Unrecognized request argument supplied: {unknown[0]}")
    if "model" not in body:
        raise OpenAIError(400, "you must provide a model parameter")
    if not isinstance(body["model"], str):
        raise _invalid_type("model", "a string", body["model"])
    _validate_messages(body.get("messages"))
    _validate_numbers(body)
    if body.get("stream_options") is not None and not body.get("stream"):
        raise OpenAIError(400, "The 'stream_options' parameter is only allowed when 'stream' is "
                          "enabled.", param="stream_options", code="invalid_value")
    if body.get("tool_choice") not in (None, "none") and not body.get("tools"):
        raise OpenAIError(400, "Invalid value for 'tool_choice': 'tool_choice' is only allowed "
                          "when 'tools' are specified.", param="tool_choice")
    _validate_response_format(body.get("response_format"), body["messages"])
    return body


def _validate_messages(messages: Any) -> None:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise OpenAIError(400, "Invalid 'messages': empty array. Expected an array with minimum "
                          "length 1, but got an empty array instead.", param="messages",
                          code="empty_array")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, "an object", message)
        if "role" not in message:
            raise _missing(f"{where}.role")
        if message["role"] not in ROLES:
            raise _invalid_value(f"{where}.role", message["role"], ROLES)
        if "content" not in message and message["role"] != "assistant":
            raise _missing(f"{where}.content")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _invalid_type(f"{where}.content", "one of a string or array of objects",
                                content)
        if message["role"] == "tool" and "tool_call_id" not in message:
            raise _missing(f"{where}.tool_call_id")


def _validate_numbers(body: dict[str, Any]) -> None:
    for name, (low, high) in RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid_type(name, "a decimal", value)
        if not low <= value <= high:
            side, bound, code = ("above maximum", f"<= {high}", "decimal_above_max_value") if (
                value > high) else ("below minimum", f">= {low}", "decimal_below_min_value")
            raise OpenAIError(400, f"Invalid '{name}': decimal {side} value. Expected a value "
                              f"{bound}, but got {value} instead.", param=name, code=code)
    for name, minimum in INTEGER_MINIMUMS.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_type(name, "an integer", value)
        if value < minimum:
            raise OpenAIError(400, f"Invalid '{name}': integer below minimum value. Expected a "
                              f"value >= {minimum}, but got {value} instead.", param=name,
                              code="integer_below_min_value")


def _validate_response_format(fmt: Any, messages: list[dict[str, Any]]) -> None:
    if fmt is None:
        return
    if not isinstance(fmt, dict):
        raise _invalid_type("response_format", "an object", fmt)
    kinds = ("json_object", "json_schema", "text")
    if fmt.get("type") not in kinds:
        raise _invalid_value("response_format.type", fmt.get("type"), kinds)
    prompt = " ".join(text_of(m.get("content")) for m in messages).lower()
    if fmt["type"] == "json_object" and "json" not in prompt:
        raise OpenAIError(400, "'messages' must contain the word 'json' in some form, to use "
                          "'response_format' of type 'json_object'.", param="messages")
    if fmt["type"] != "json_schema":
        return
    spec = fmt.get("json_schema")
    if spec is None:
        raise _missing("response_format.json_schema")
    if not isinstance(spec, dict):
        raise _invalid_type("response_format.json_schema", "an object", spec)
    if "name" not in spec:
        raise _missing("response_format.json_schema.name")
    if not isinstance(spec["name"], str) or not SCHEMA_NAME.fullmatch(spec["name"]):
        raise OpenAIError(400, "Invalid 'response_format.json_schema.name': string does not "
                          "match pattern. Expected a string that matches the pattern "
                          "'^[a-zA-Z0-9_-]+$'.", param="response_format.json_schema.name",
                          code="invalid_value")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise _invalid_type("response_format.json_schema.schema", "an object", schema)
    if spec.get("strict"):
        problem = strict_schema_problem(schema)
        if problem:
            raise OpenAIError(400, f"Invalid schema for response_format '{spec['name']}': "
                              f"{problem}", param="response_format", code="invalid_json_schema")


def strict_schema_problem(schema: dict[str, Any], context: tuple[str, ...] = ()) -> str | None:
    """What Structured Outputs' strict mode rejects: open objects and optional properties."""
    if not context and schema.get("type") != "object":
        return (f"""schema must be a JSON Schema of 'type: "object"', got """
                f"""'type: "{schema.get('type')}"'.""")
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return (f"In context={context!r}, 'additionalProperties' is required to be supplied "
                    "and to be false.")
        missing = [k for k in schema.get("properties", {}) if k not in schema.get("required", [])]
        if missing:
            return (f"In context={context!r}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'.")
    children: list[tuple[tuple[str, ...], Any]] = [
        ((*context, "properties", k), v) for k, v in schema.get("properties", {}).items()]
    children += [((*context, "items"), schema["items"])] if isinstance(
        schema.get("items"), dict) else []
    for key in ("anyOf", "$defs", "definitions"):
        group = schema.get(key)
        pairs = enumerate(group) if isinstance(group, list) else (group or {}).items()
        children += [((*context, key, str(k)), v) for k, v in pairs]
    for where, child in children:
        problem = strict_schema_problem(child, where) if isinstance(child, dict) else None
        if problem:
            return problem
    return None
