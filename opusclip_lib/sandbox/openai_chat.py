"""Fake OpenAI ``POST /v1/chat/completions``: auth, rate limits and seeded answers.

Answers are derived from the request (SHA-256 of the body seeds the RNG), so a cassette recorded
today matches tomorrow's run; only ids, ``created`` and timing headers change. ``stream=true``
sends the same answer as server-sent events (:mod:`.openai_stream`), paced by
``config.openai.token_latency``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
import string
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from opusclip_lib.sandbox import openai_extra
from opusclip_lib.sandbox.config import Fault, SandboxConfig
from opusclip_lib.sandbox.limits import BucketState, TokenBuckets
from opusclip_lib.sandbox.openai_stream import chunk_events
from opusclip_lib.sandbox.openai_validation import BAD_JSON, OpenAIError, text_of, validate
from opusclip_lib.sandbox.pipeline import retry_after, route, work
from opusclip_lib.sandbox.schema_fill import SchemaFiller, vocabulary
from opusclip_lib.sandbox.streams import StreamTracker, paced, stream_fault

ORGANIZATION = "org-sandbox"
NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization "
          "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field"
          " (with blank username) if you're accessing the API from your browser and are prompted "
          "for a username and password. You can obtain an API key from "
          "https://platform.openai.com/account/api-keys.")
TEMPLATES = (
    "The key point is that {a} depends on {b}.",
    "In practice, start with {a} and measure {b} before changing anything.",
    "A common mistake is to treat {a} as if it were {b}.",
    "Consider how {a} affects {b} over time.",
    "{A} and {b} work best together when each stays small.",
)
FAULT_ERRORS = {
    500: ("The server had an error while processing your request. Sorry about that!",
          "server_error"),
    503: ("The server is overloaded or not ready yet.", "server_error"),
    504: ("Request timed out.", "server_error"),
}
ALPHANUMERIC = string.ascii_letters + string.digits


def go_duration(seconds: float) -> str:
    """A duration the way Go prints it, rounded to milliseconds: ``12ms``, ``1.2s``, ``6m0s``."""
    ms = max(0, round(seconds * 1000))
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs = f"{ms // 1000}.{ms % 1000:03d}".rstrip("0").rstrip(".")
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + secs + "s"


def estimate_tokens(text: str) -> int:
    """OpenAI's rule of thumb: about four characters a token."""
    return math.ceil(len(text) / 4)


class OpenAIAPI:
    """Routes relative to ``https://api.openai.com/v1``."""

    hosts = ("api.openai.com",)
    base_path = "/v1"
    local_prefix = "/openai/v1"

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.requests = TokenBuckets()
        self.tokens = TokenBuckets()
        self.streams = StreamTracker()
        self.routes = [route(self, "/chat/completions", "openai.chat.completions",
                             self.chat_completions, ["POST"]),
                       *openai_extra.routes(self)]

    def reset(self) -> None:
        self.requests.reset()
        self.tokens.reset()

    def fault_response(self, fault: Fault, status: int) -> Response:
        if status == 429:
            limit = self.config.openai.requests_per_minute
            wait = fault.retry_after_s
            headers = _retry_headers(wait)
            if limit is not None:
                headers |= _bucket_headers("requests", BucketState(False, limit, 0, wait, wait))
            error = OpenAIError(
                429, f"Rate limit reached in organization {ORGANIZATION} on requests per min "
                f"(RPM): Limit {limit or 0}, Used {limit or 0}, Requested 1. Please try again in "
                f"{go_duration(wait)}.", "requests", code="rate_limit_exceeded", headers=headers)
        else:
            message, kind = FAULT_ERRORS[status]
            error = OpenAIError(status, message, kind)
        return self._respond(error.body, error.status, error.headers, time.perf_counter())

    async def chat_completions(self, request: Request) -> Response:
        started = time.perf_counter()
        limit_headers: dict[str, str] = {}
        try:
            key = self._authorise(request.headers.get("authorization", ""))
            try:
                body = validate(json.loads(await request.body()))
            except ValueError:
                raise OpenAIError(400, BAD_JSON) from None
            prompt_tokens = _prompt_tokens(body["messages"])
            cap = body.get("max_completion_tokens") or body.get("max_tokens") or 0
            limit_headers = self._rate_limit(key, body["model"],
                                             prompt_tokens + cap * (body.get("n") or 1))
            await work(self.config, "openai.chat.completions")
            completion = complete(body, prompt_tokens)
            if body.get("stream"):
                return self._stream(request, completion, body, limit_headers, started)
            return self._respond(completion, 200, limit_headers, started)
        except OpenAIError as error:
            return self._respond(error.body, error.status, limit_headers | error.headers, started)

    @staticmethod
    def _respond(payload: dict[str, Any], status: int, headers: dict[str, str],
                 started: float) -> Response:
        return JSONResponse(payload, status, headers=openai_headers(headers, started))

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """A ``chat.completion`` for a validated request (also behind ``/v1/responses``)."""
        return complete(body, _prompt_tokens(body["messages"]))

    def _stream(self, request: Request, completion: dict[str, Any], body: dict[str, Any],
                headers: dict[str, str], started: float) -> Response:
        pieces = paced(chunk_events(completion, body), latency=self.config.openai.token_latency,
                       fault=stream_fault(request), tracker=self.streams)
        return StreamingResponse(pieces, media_type="text/event-stream", headers={
            **openai_headers(headers, started), "cache-control": "no-cache"})

    def _authorise(self, header: str) -> str:
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise OpenAIError(401, NO_KEY)
        if not self.config.accepts_key(key):
            masked = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 7 else key
            raise OpenAIError(401, f"Incorrect API key provided: {masked}. You can find your API "
                              "key at https://platform.openai.com/account/api-keys.",
                              code="invalid_api_key")
        return key

    def _rate_limit(self, key: str, model: str, tokens: int) -> dict[str, str]:
        """Take one request and ``tokens`` from the key's buckets; 429 when either is short."""
        headers: dict[str, str] = {}
        settings = self.config.openai
        for kind, buckets, limit, amount, unit in (
            ("requests", self.requests, settings.requests_per_minute, 1, "requests per min (RPM)"),
            ("tokens", self.tokens, settings.tokens_per_minute, tokens, "tokens per min (TPM)"),
        ):
            if limit is None:
                continue
            state = buckets.take(key, amount, limit)
            headers |= _bucket_headers(kind, state)
            if not state.allowed:
                raise OpenAIError(
                    429, f"Rate limit reached for {model} in organization {ORGANIZATION} on "
                    f"{unit}: Limit {limit}, Used {limit - state.remaining}, Requested {amount}. "
                    f"Please try again in {go_duration(state.retry_s)}.", kind,
                    code="rate_limit_exceeded", headers=headers | _retry_headers(
                        state.retry_s))
        return headers


def openai_headers(headers: dict[str, str], started: float) -> dict[str, str]:
    """What every OpenAI answer carries, then ``headers``."""
    return {
        "x-request-id": f"req_{secrets.token_hex(16)}",
        "openai-organization": ORGANIZATION,
        "openai-processing-ms": str(round((time.perf_counter() - started) * 1000)),
        "openai-version": "2020-10-01",
        **headers,
    }


def _bucket_headers(kind: str, state: BucketState) -> dict[str, str]:
    return {f"x-ratelimit-limit-{kind}": str(state.limit),
            f"x-ratelimit-remaining-{kind}": str(state.remaining),
            f"x-ratelimit-reset-{kind}": go_duration(state.reset_s)}


def _retry_headers(seconds: float) -> dict[str, str]:
    """Sent on every 429 (whether OpenAI does is unconfirmed; its SDK reads both)."""
    return retry_after(seconds) | {"retry-after-ms": str(max(1, math.ceil(seconds * 1000)))}


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Roughly how OpenAI counts a chat prompt: text tokens plus a few per message."""
    return 3 + sum(4 + estimate_tokens(text_of(m.get("content"))) for m in messages)


def _rng_for(body: dict[str, Any], choice: int) -> random.Random:
    material = json.dumps([body.get(k) for k in ("model", "messages", "response_format", "tools",
                                                 "tool_choice", "seed")] + [choice],
                          sort_keys=True, default=str)
    return random.Random(hashlib.sha256(material.encode()).digest())


def complete(body: dict[str, Any], prompt_tokens: int) -> dict[str, Any]:
    """A ``chat.completion`` for a validated request."""
    prompt = "\n".join(text_of(m.get("content")) for m in body["messages"])
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    choices, completion_tokens = [], 0
    for index in range(body.get("n") or 1):
        rng = _rng_for(body, index)
        message, finish = _answer(body, prompt, rng)
        used = estimate_tokens(message["content"] or json.dumps(message.get("tool_calls")))
        if cap is not None and used > cap and message["content"] is not None:
            message["content"], finish, used = message["content"][: cap * 4], "length", cap
        completion_tokens += used
        choices.append({"index": index, "message": message, "logprobs": None,
                        "finish_reason": finish})
    return {
        "id": "chatcmpl-" + "".join(secrets.choice(ALPHANUMERIC) for _ in range(29)),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_sandbox01",
    }


def _answer(body: dict[str, Any], prompt: str,
            rng: random.Random) -> tuple[dict[str, Any], str]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None,
                               "annotations": []}
    tool = _tool_to_call(body)
    if tool is not None:
        arguments = SchemaFiller(tool.get("parameters") or {"type": "object"}, rng, prompt).fill()
        message["tool_calls"] = [{
            "id": "call_" + "".join(rng.choice(ALPHANUMERIC) for _ in range(24)),
            "type": "function",
            "function": {"name": tool["name"], "arguments": json.dumps(arguments)},
        }]
        return message, "tool_calls"
    fmt = body.get("response_format") or {"type": "text"}
    if fmt["type"] == "json_schema":
        schema = fmt["json_schema"].get("schema") or {"type": "object"}
        message["content"] = json.dumps(SchemaFiller(schema, rng, prompt).fill())
    elif fmt["type"] == "json_object":
        message["content"] = json.dumps({"answer": _prose(prompt, rng)})
    else:
        message["content"] = _prose(prompt, rng)
    return message, "stop"


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function the "model" calls: the named one, else the first, unless it just got results."""
    functions = [t["function"] for t in body.get("tools") or []
                 if isinstance(t, dict) and t.get("type") == "function" and "function" in t]
    choice = body.get("tool_choice", "auto")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((f for f in functions if f.get("name") == name), functions[0])
    if choice == "auto" and body["messages"][-1].get("role") == "tool":
        return None
    return functions[0]


def _prose(prompt: str, rng: random.Random) -> str:
    words = vocabulary(prompt)
    topic = " ".join(words[:4])
    sentences = [f"Here is a sandbox answer about {topic}."]
    for template in rng.sample(TEMPLATES, rng.randint(1, 3)):
        a, b = rng.choice(words), rng.choice(words)
        sentences.append(template.format(a=a, b=b, A=a.capitalize()))
    return " ".join(sentences)
