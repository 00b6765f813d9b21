"""``stream: true`` for the fake chat completions: the same answer, sent as server-sent events.

The answer is computed whole (so a streamed and an unstreamed request with the same body say
the same thing), then cut into tokens (a word or a run of punctuation, with its leading space)
and sent as ``chat.completion.chunk`` events the way OpenAI sends them: a first chunk with the
role, one chunk per token, a chunk with ``finish_reason``, then, with
``stream_options.include_usage``, a chunk with no choices and the usage, and ``data: [DONE]``.
OpenAI's prose says the earlier chunks then carry ``"usage": null``; the spec types ``usage``
as an object (not nullable), and the spec is the authority here, so they leave it out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

TOKEN = re.compile(r"\s*(?:\w+|[^\w\s]+)|\s+")


def tokens(text: str) -> list[str]:
    """Pieces that join back into ``text`` exactly."""
    return TOKEN.findall(text)


def event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def chunk_events(completion: dict[str, Any], body: dict[str, Any]) -> Iterator[bytes]:
    """The SSE body for ``completion`` (a ``chat.completion`` built for ``body``)."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    head = {"id": completion["id"], "object": "chat.completion.chunk",
            "created": completion["created"], "model": completion["model"],
            "service_tier": completion["service_tier"],
            "system_fingerprint": completion["system_fingerprint"]}

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        payload = {**head, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                        "finish_reason": finish}]}
        return event(payload)

    for choice in completion["choices"]:
        index, message = choice["index"], choice["message"]
        yield chunk(index, {"role": "assistant", "content": "", "refusal": None})
        for call_index, call in enumerate(message.get("tool_calls") or []):
            yield chunk(index, {"tool_calls": [{"index": call_index, **call}]})
        for token in tokens(message.get("content") or ""):
            yield chunk(index, {"content": token})
        yield chunk(index, {}, choice["finish_reason"])
    if include_usage:
        yield event({**head, "choices": [], "usage": completion["usage"]})
    yield event("[DONE]")
