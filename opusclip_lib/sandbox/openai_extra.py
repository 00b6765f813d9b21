"""The OpenAI routes around chat completions that SDKs call too: ``GET /v1/models``,
``GET /v1/models/{model}`` and a minimal ``POST /v1/responses``.

``/v1/responses`` answers the newer shape (``object: "response"``, ``output[].content[]`` of
``output_text``) from the same seeded generator as chat completions: ``input`` (a string or a
list of messages) and ``instructions`` become the chat messages, ``text.format`` of type
``json_schema`` becomes a structured answer. Streaming, tools and stored conversations are not
simulated (400 ``unsupported_value``).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opusclip_lib.sandbox.openai_validation import BAD_JSON, OpenAIError, validate
from opusclip_lib.sandbox.pipeline import route, work

if TYPE_CHECKING:
    from opusclip_lib.sandbox.openai_chat import OpenAIAPI

MODELS = (  # (id, created, owned_by)
    ("gpt-4o-mini", 1721172741, "system"),
    ("gpt-4o", 1715367049, "system"),
    ("gpt-4.1-mini", 1744318173, "system"),
    ("whisper-1", 1677532384, "openai-internal"),
    ("text-embedding-3-small", 1705948997, "system"),
)
RESPONSE_FIELDS = frozenset({"model", "input", "instructions", "text", "max_output_tokens",
                             "temperature", "top_p", "metadata", "store", "user", "seed",
                             "stream", "tools", "tool_choice", "parallel_tool_calls"})


def _model(model_id: str, created: int, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owner}


def routes(api: OpenAIAPI) -> list[Route]:
    async def list_models(request: Request) -> Response:
        started = time.perf_counter()
        try:
            api._authorise(request.headers.get("authorization", ""))
        except OpenAIError as error:
            return api._respond(error.body, error.status, error.headers, started)
        await work(api.config, "openai.models.list")
        return api._respond({"object": "list", "data": [_model(*m) for m in MODELS]}, 200, {},
                            started)

    async def get_model(request: Request) -> Response:
        started = time.perf_counter()
        model_id = request.path_params["model"]
        try:
            api._authorise(request.headers.get("authorization", ""))
            found = next((m for m in MODELS if m[0] == model_id), None)
            if found is None:
                raise OpenAIError(404, f"The model '{model_id}' does not exist",
                                  param="model", code="model_not_found")
        except OpenAIError as error:
            return api._respond(error.body, error.status, error.headers, started)
        await work(api.config, "openai.models.list")
        return api._respond(_model(*found), 200, {}, started)

    async def create_response(request: Request) -> Response:
        started = time.perf_counter()
        try:
            api._authorise(request.headers.get("authorization", ""))
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise OpenAIError(400, BAD_JSON) from None
            chat = _as_chat(body)
            await work(api.config, "openai.responses")
            answer = api.complete(chat)
        except OpenAIError as error:
            return api._respond(error.body, error.status, error.headers, started)
        return api._respond(_as_response(body, answer), 200, {}, started)

    return [route(api, "/models", "openai.models.list", list_models, ["GET"]),
            route(api, "/models/{model:path}", "openai.models.list", get_model, ["GET"]),
            route(api, "/responses", "openai.responses", create_response, ["POST"])]


def _as_chat(body: Any) -> dict[str, Any]:
    """The chat-completions request a ``/v1/responses`` request amounts to (validated)."""
    if not isinstance(body, dict):
        raise OpenAIError(400, BAD_JSON)
    unknown = sorted(set(body) - RESPONSE_FIELDS)
    if unknown:
        raise OpenAIError(400, f"Unknown parameter: '{unknown[0]}'.", param=unknown[0],
                          code="unknown_parameter")
    for unsupported in ("stream", "tools"):
        if body.get(unsupported):
            raise OpenAIError(400, f"The sandbox's /v1/responses does not support "
                              f"'{unsupported}'.", param=unsupported, code="unsupported_value")
    if "input" not in body:
        raise OpenAIError(400, "Missing required parameter: 'input'.", param="input",
                          code="missing_required_parameter")
    given = body["input"]
    messages = ([{"role": "user", "content": given}] if isinstance(given, str)
                else [{"role": m.get("role", "user"), "content": m.get("content", "")}
                      for m in given if isinstance(m, dict)] if isinstance(given, list) else [])
    if body.get("instructions"):
        messages.insert(0, {"role": "developer", "content": body["instructions"]})
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    for name in ("temperature", "top_p", "seed"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    fmt = (body.get("text") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    return validate(chat)


def _as_response(body: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
    choice = completion["choices"][0]
    text = choice["message"]["content"] or ""
    usage = completion["usage"]
    incomplete = choice["finish_reason"] == "length"
    fmt = (body.get("text") or {}).get("format") or {"type": "text"}
    return {
        "id": "resp_" + secrets.token_hex(24), "object": "response",
        "created_at": completion["created"], "completed_at": int(time.time()),
        "status": "incomplete" if incomplete else "completed", "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.get("instructions"), "max_output_tokens":
            body.get("max_output_tokens"), "model": completion["model"],
        "output": [{"id": "msg_" + secrets.token_hex(24), "type": "message",
                    "status": "incomplete" if incomplete else "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": [],
                                 "logprobs": []}]}],
        "parallel_tool_calls": True, "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None}, "service_tier": "default",
        "store": bool(body.get("store", True)), "temperature": body.get("temperature", 1.0),
        "text": {"format": fmt}, "tool_choice": "auto", "tools": [],
        "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": {"input_tokens": usage["prompt_tokens"],
                  "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens": usage["completion_tokens"],
                  "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": usage["total_tokens"]},
        "metadata": body.get("metadata") or {},
        **({"user": body["user"]} if body.get("user") else {}),
    }
