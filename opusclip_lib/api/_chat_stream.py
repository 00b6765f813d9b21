"""A streamed chat completion: ``async with ai.stream_chat(messages) as stream: async for ...``.

Why ``async with`` and not a bare ``async for``: a loop that ``break``\\s out of an async
generator leaves it suspended until the garbage collector finds it, and its connection open
until then (PEP 533 was never accepted). The ``async with`` block closes the connection the
moment it ends, however it ends. The OpenAI SDK and httpx's ``client.stream()`` chose the same.
"""

from __future__ import annotations

import json
from collections import deque
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from pydantic import BaseModel, ValidationError

from opusclip_lib.api._base import summarize
from opusclip_lib.api._sse import SSEDecoder, SSEError
from opusclip_lib.api._streaming import BodyStream, open_stream
from opusclip_lib.api.errors import (
    APIError,
    ClientStateError,
    ContentFilteredError,
    MalformedResponseError,
    PartialStreamError,
    ResponseDetails,
    StreamInterruptedError,
    StreamProtocolError,
    StreamTimeoutError,
    error_class_for,
)
from opusclip_lib.api.models.openai import CompletionUsage
from opusclip_lib.api.models.streaming import ChatCompletionChunk

if TYPE_CHECKING:
    from opusclip_lib.api.openai import OpenAIClient

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound=PartialStreamError)
DONE = "[DONE]"


class ChatStream(Generic[M]):
    """The chunks of one completion as they arrive, and what they add up to.

    After the loop: :attr:`text` (the whole answer), :attr:`finish_reason`, :attr:`usage` (with
    ``include_usage``), :attr:`ttft_s` (seconds to the first token) and, for a structured
    stream, :meth:`output` (the text validated into the output model).
    """

    def __init__(self, client: OpenAIClient, body: dict[str, Any], *,
                 output_type: type[M] | None, chunk_timeout_s: float | None) -> None:
        self._client = client
        self._body = body
        self._output_type = output_type
        self._chunk_timeout_s = chunk_timeout_s
        self._context: AbstractAsyncContextManager[BodyStream] | None = None
        self._stream: BodyStream | None = None
        self._decoder = SSEDecoder()
        self._ready: deque[ChatCompletionChunk | APIError] = deque()
        self._parts: list[str] = []
        self.done = False
        self.chunks = 0
        self.tokens = 0
        self.finish_reason: str | None = None
        self.refusal: str | None = None
        self.usage: CompletionUsage | None = None
        self.ttft_s: float | None = None
        self._first_token_s: float | None = None

    async def __aenter__(self) -> Self:
        if self._context is not None:
            raise ClientStateError("a ChatStream is entered once", provider="openai")
        client = self._client
        request = client._request("POST", "/chat/completions", json=self._body, headers={
            "Accept": "text/event-stream", "Accept-Encoding": "identity"})
        self._context = open_stream(client, "chat.completions.stream", request,
                                    chunk_timeout_s=self._chunk_timeout_s)
        self._stream = await self._context.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._context is not None
        if self._stream is not None:
            self._stream.labels.update(self._labels())
        return await self._context.__aexit__(*exc_info)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        stream = self._stream
        if stream is None:
            raise ClientStateError("use `async with ai.stream_chat(...) as stream:` first",
                                   provider="openai")
        while not self._ready:
            if self.done:
                raise StopAsyncIteration
            try:
                piece = await stream.receive()
            except (StreamInterruptedError, StreamTimeoutError) as exc:
                raise self._annotated(exc) from None
            failure: APIError | None = None
            try:
                events = self._decoder.feed(piece) if piece else self._decoder.end()
            except SSEError as exc:
                events, failure = [], self._protocol_error(str(exc))
            for event in events:
                try:
                    self._take(event.data)
                except APIError as exc:  # after the chunks before it, as the server sent them
                    failure = exc
                    break
            if failure is not None:
                self._ready.append(failure)
            if not piece and not self.done and not self._ready:
                raise self._annotated(stream.interrupted("the stream ended before [DONE]"))
        item = self._ready.popleft()
        if isinstance(item, APIError):
            self._ready.clear()
            self.done = True
            raise item
        return self._hand_out(item)

    def _annotated(self, exc: E) -> E:
        """A mid-stream error with what the decoded events had added up to."""
        exc.received_events, exc.partial_text = self.chunks, self.text
        exc.add_note(f"{self.chunks} event(s) had arrived, {len(self.text)} character(s) of "
                     "text: see .partial_text")
        return exc

    def _take(self, data: str) -> None:
        stream = self._stream
        assert stream is not None
        if self.done:
            raise self._protocol_error("data after [DONE]")
        if data == DONE:
            self.done = True
            return
        try:
            payload = json.loads(data)
        except ValueError:
            raise self._protocol_error(f"event {self.chunks + 1} is not JSON") from None
        if isinstance(payload, dict) and "error" in payload:  # an error after the 200
            error = payload["error"] if isinstance(payload["error"], dict) else {}
            code = error.get("code") or error.get("type")
            raise error_class_for(500, code)(
                str(error.get("message") or "error in stream"), provider="openai",
                status_code=200, code=code, request_id=stream.request_id)
        try:
            chunk = ChatCompletionChunk.model_validate(payload)
        except ValidationError as exc:
            raise self._protocol_error(f"event {self.chunks + 1} is not a chunk: "
                                       f"{summarize(exc)}") from exc
        self.chunks += 1
        if chunk.content and self._first_token_s is None:
            self._first_token_s = stream.meter.clock()
            self.ttft_s = self._first_token_s - stream.meter.started_s
        self._ready.append(chunk)

    def _hand_out(self, chunk: ChatCompletionChunk) -> ChatCompletionChunk:
        """Add ``chunk`` to the totals as the caller gets it (``text`` is what they have seen)."""
        for choice in chunk.choices[:1]:
            if choice.delta.content:
                self.tokens += 1
                self._parts.append(choice.delta.content)
            if choice.delta.refusal:
                self.refusal = (self.refusal or "") + choice.delta.refusal
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        return chunk

    def _protocol_error(self, problem: str) -> StreamProtocolError:
        stream = self._stream
        return StreamProtocolError(
            problem, provider="openai", status_code=200, code="bad_stream",
            request_id=stream.request_id if stream else None)

    def _labels(self) -> dict[str, Any]:
        stream = self._stream
        assert stream is not None
        labels: dict[str, Any] = {"ttft_s": self.ttft_s, "stream_tokens": self.tokens}
        if self._first_token_s is not None and self.tokens > 1:
            spent = stream.meter.clock() - self._first_token_s
            labels["tokens_per_s"] = (self.tokens - 1) / spent if spent > 0 else None
        if self.usage is not None:
            labels |= {"tokens": self.usage.total_tokens,
                       "prompt_tokens": self.usage.prompt_tokens,
                       "completion_tokens": self.usage.completion_tokens}
        return labels

    @property
    def text(self) -> str:
        """The answer so far (all of it once the loop has ended)."""
        return "".join(self._parts)

    async def until_done(self) -> str:
        """Read the rest of the stream; the whole text."""
        async for _ in self:
            pass
        return self.text

    def output(self) -> M:
        """The finished structured answer, validated into the output model."""
        output_type = self._output_type
        if output_type is None:
            raise ClientStateError("output() is for stream_structured()", provider="openai")
        request_id = self._stream.request_id if self._stream else None
        details: ResponseDetails = {"provider": "openai", "status_code": 200,
                                    "request_id": request_id}
        if not self.done:
            raise ClientStateError("the stream is not finished: read it to the end first",
                                   provider="openai")
        if self.refusal:
            raise ContentFilteredError(f"the model refused: {self.refusal}", code="refusal",
                                       **details)
        if self.finish_reason == "length":
            raise MalformedResponseError("the answer was cut off at max_completion_tokens, so "
                                         "its JSON is incomplete", code="length", **details)
        try:
            return output_type.model_validate_json(self.text)
        except ValidationError as exc:
            raise MalformedResponseError(
                f"the answer breaks the {output_type.__name__} schema: {summarize(exc)}",
                code="schema_mismatch", **details) from exc
