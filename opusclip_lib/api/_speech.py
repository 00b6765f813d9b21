"""Speech as it is made: the chunked ``/stream`` body and the input-streaming WebSocket.

:class:`AudioStream` hands out audio bytes as they arrive (see :mod:`._streaming` for the
retry, timeout and closing rules). :class:`SpeechSocket` is ElevenLabs' WebSocket API
(``elevenlabs-asyncapi.yml``, channel ``stream-input``): text goes in while audio and its
character alignment come out, so speech can start before the text is finished (an LLM still
writing it). The socket uses aiohttp's WebSocket client: aiohttp is already the default HTTP
transport, so it adds no dependency, and httpx has no WebSocket client of its own. Its
``receive(timeout=)`` is the timeout between messages; a close with any code but 1000 is a
:class:`~opusclip_lib.api.errors.WebSocketClosedError`.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Self

import aiohttp
from pydantic import ValidationError

from opusclip_lib.api._base import summarize
from opusclip_lib.api._streaming import BodyStream, StreamMeter
from opusclip_lib.api._urls import segment
from opusclip_lib.api.errors import (
    APIConnectionError,
    APITimeoutError,
    ClientStateError,
    MalformedResponseError,
    StreamDetails,
    StreamInterruptedError,
    StreamTimeoutError,
    WebSocketClosedError,
    error_class_for,
)
from opusclip_lib.api.models.streaming import SpeechChunk
from opusclip_lib.resilience.fallback import Fallback

if TYPE_CHECKING:
    from opusclip_lib.api.elevenlabs import ElevenLabsClient

NORMAL_CLOSE = 1000


class AudioStream:
    """``async with tts.stream_speech(text, voice) as audio: async for piece in audio:``."""

    def __init__(self, context: AbstractAsyncContextManager[BodyStream]) -> None:
        self._context = context
        self._body: BodyStream | None = None

    async def __aenter__(self) -> Self:
        self._body = await self._context.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._context.__aexit__(*exc_info)

    @property
    def body(self) -> BodyStream:
        if self._body is None:
            raise ClientStateError("use `async with tts.stream_speech(...) as audio:` first",
                                   provider="elevenlabs")
        return self._body

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        piece = await self.body.receive()
        if not piece:
            raise StopAsyncIteration
        return piece


class SpeechSocket:
    """One WebSocket session: ``await speech.send("Hello ")`` ..., ``await speech.finish()``,
    and ``async for chunk in speech`` (a :class:`SpeechChunk`) until the final message.

    Sending and receiving may run in two tasks (text from a model in one, audio to a player in
    the other): the socket is full duplex.
    """

    def __init__(self, client: ElevenLabsClient, voice_id: str, *, query: dict[str, str],
                 voice_settings: dict[str, Any] | None, chunk_timeout_s: float | None) -> None:
        self._client = client
        self._voice_id = voice_id
        self._query = query
        self._voice_settings = voice_settings
        self.chunk_timeout_s = chunk_timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self.done = False
        self.messages = 0
        self.audio_bytes = 0
        self.characters_sent = 0
        clock = client.recorder.now if client.recorder is not None else time.perf_counter
        self.meter = StreamMeter(clock, clock())

    async def __aenter__(self) -> Self:
        client = self._client
        url = client._url(f"/v1/text-to-speech/{segment(self._voice_id)}/stream-input",
                          self._query)
        websocket_url = str(url.with_scheme({"https": "wss", "http": "ws"}[url.scheme]))
        auth = client._auth_headers(client._api_key.get_secret_value())  # as every request
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=client.timeout.connect))

        async def connect() -> aiohttp.ClientWebSocketResponse:
            assert self._session is not None
            try:
                return await self._session.ws_connect(
                    websocket_url, headers=auth, autoping=True)
            except aiohttp.WSServerHandshakeError as exc:
                raise error_class_for(exc.status, None)(
                    f"WebSocket handshake refused: {exc.message}", provider=client.provider,
                    status_code=exc.status) from None
            except (aiohttp.ClientError, TimeoutError) as exc:
                kind = APITimeoutError if isinstance(exc, TimeoutError) else APIConnectionError
                raise kind(client._redact(f"{type(exc).__name__} opening the WebSocket: {exc}"),
                           provider=client.provider) from None

        client.streams_open += 1
        try:
            socket = await client._call(connect)  # retried: nothing received yet
            if isinstance(socket, Fallback):  # a socket has no stand-in: say why there is none
                raise APIConnectionError(f"no socket: {socket.reason}", provider=client.provider)
            self._socket = socket
            initial: dict[str, Any] = {"text": " "}
            if self._voice_settings:
                initial["voice_settings"] = self._voice_settings
            await self._socket.send_str(json.dumps(initial))
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        error = exc_info[1] if len(exc_info) > 1 else None
        self.meter.ended_s = self.meter.clock()
        await self._close()
        self._record(error)

    async def _close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
            self._client.streams_open -= 1

    @property
    def socket(self) -> aiohttp.ClientWebSocketResponse:
        if self._socket is None:
            raise ClientStateError("use `async with tts.speech_socket(voice) as speech:` first",
                                   provider="elevenlabs")
        return self._socket

    async def send(self, text: str, *, flush: bool = False) -> None:
        """Add ``text`` (end words with a space); ``flush`` speaks what is buffered now."""
        if not text:
            raise ValueError("empty text ends the input: call finish()")
        message: dict[str, Any] = {"text": text}
        if flush:
            message["flush"] = True
        await self.socket.send_str(json.dumps(message))
        self.characters_sent += len(text)

    async def finish(self) -> None:
        """No more text: the server speaks the rest, sends the final message and closes."""
        await self.socket.send_str(json.dumps({"text": ""}))

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SpeechChunk:
        while not self.done:
            message = await self._receive()
            if message.get("isFinal"):
                self.done = True
                break
            if message.get("audio"):
                return self._chunk(message)
        raise StopAsyncIteration

    async def _receive(self) -> dict[str, Any]:
        provider = self._client.provider
        details: StreamDetails = {"provider": provider, "received_bytes": self.audio_bytes,
                                  "received_chunks": self.messages}
        try:
            frame = await self.socket.receive(timeout=self.chunk_timeout_s)
        except TimeoutError:
            raise StreamTimeoutError(f"no message for {self.chunk_timeout_s:g} s: the socket "
                                     "stalled", **details) from None
        if frame.type == aiohttp.WSMsgType.TEXT:
            try:
                message = json.loads(frame.data)
            except ValueError:
                raise MalformedResponseError("a WebSocket message is not JSON",
                                             provider=provider, code="bad_stream") from None
            if not isinstance(message, dict):
                raise MalformedResponseError("a WebSocket message is not an object",
                                             provider=provider, code="bad_stream")
            return message
        if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                          aiohttp.WSMsgType.CLOSED):
            code = self.socket.close_code if frame.type != aiohttp.WSMsgType.CLOSE else frame.data
            reason = (frame.extra or "") if frame.type == aiohttp.WSMsgType.CLOSE else ""
            if code == NORMAL_CLOSE:
                raise StreamInterruptedError("the socket closed before the final message",
                                             **details)
            raise WebSocketClosedError.for_close_code(
                f"the server closed the WebSocket with {code}: {reason or 'no reason given'} "
                f"(after {self.messages} audio message(s))", provider=provider, close_code=code)
        raise StreamInterruptedError(f"the socket failed ({frame.type.name})", **details)

    def _chunk(self, message: dict[str, Any]) -> SpeechChunk:
        try:
            chunk = SpeechChunk.model_validate(message)
        except ValidationError as exc:
            raise MalformedResponseError(f"an audio message does not match SpeechChunk: "
                                         f"{summarize(exc)}", provider="elevenlabs",
                                         code="schema_mismatch") from exc
        self.messages += 1
        self.audio_bytes += len(chunk.audio)
        self.meter.count(chunk.audio)
        return chunk

    def _record(self, error: BaseException | None) -> None:
        client = self._client
        client.usage.calls += 1
        client.usage.spent.update({"characters": self.characters_sent})
        if error is not None and not isinstance(error, asyncio.CancelledError):
            client.usage.failures += 1
        if client.recorder is None:
            return
        meter = self.meter
        client.recorder.add(
            "http", f"{client.provider}.text_to_speech.websocket", start=meter.started_s,
            seconds=meter.seconds, ok=error is None,
            error=None if error is None else type(error).__name__, provider=client.provider,
            status=getattr(error, "close_code", None) or NORMAL_CLOSE, bytes=self.audio_bytes,
            chunks=self.messages, ttfb_s=meter.ttfb_s, streamed=True,
            cost=self.characters_sent, cost_unit=client.cost_unit)
