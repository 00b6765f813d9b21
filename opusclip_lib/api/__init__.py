"""Async clients for YouTube Data API v3, OpenAI, Stability AI and ElevenLabs, on httpx.

::

    async with YouTubeClient() as yt, OpenAIClient() as ai:
        videos = await yt.videos(["dQw4w9WgXcQ"])
        picks = await ai.pick_highlights(transcript.segments, 3)
        heard = await ai.transcribe(mp3_bytes, filename="talk.mp3")   # words with times

Streams are ``async with`` blocks (the block's end closes the connection however the loop
ended)::

    async with ai.stream_chat(messages) as stream:          # ChatStream: SSE chat chunks
        async for chunk in stream:
            print(chunk.content, end="")
    async with tts.speech_socket(voice_id) as speech: ...   # SpeechSocket: the TTS WebSocket
    image = await sd.upscale_creative(png, "sharper")       # start, then poll (PollPolicy)

Keys come from ``YOUTUBE_API_KEY``, ``OPENAI_API_KEY``, ``STABILITY_API_KEY`` and
``ELEVENLABS_API_KEY``. Each client takes ``base_url``, ``transport``, ``timeout``, ``limits``,
``recorder`` (an :class:`opusclip_lib.metrics.Recorder`) and ``resilience`` (an
:class:`opusclip_lib.resilience.Resilience`).
"""

from opusclip_lib.api._base import APIClient, ClientOptions, ResilienceHook, Usage
from opusclip_lib.api._chat_stream import ChatStream
from opusclip_lib.api._polling import PollPolicy, PollStats, poll
from opusclip_lib.api._speech import AudioStream, SpeechSocket
from opusclip_lib.api._sse import ServerSentEvent, SSEDecoder, SSEError
from opusclip_lib.api.elevenlabs import ElevenLabsClient
from opusclip_lib.api.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientStateError,
    ContentFilteredError,
    GenerationPendingError,
    InvalidRequestError,
    InvalidVideoIdError,
    MalformedResponseError,
    NotFoundError,
    PartialStreamError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    RetryableStatusError,
    ServerError,
    StreamInterruptedError,
    StreamProtocolError,
    StreamTimeoutError,
    WebSocketClosedError,
    WebSocketUnavailableError,
)
from opusclip_lib.api.models.openai import Transcription, TranscriptionSegment, TranscriptionWord
from opusclip_lib.api.openai import OpenAIClient
from opusclip_lib.api.stability import StabilityClient
from opusclip_lib.api.transport import default_transport_name, make_sender
from opusclip_lib.api.youtube import YouTubeClient
from opusclip_lib.errors import ConfigurationError

__all__ = [
    "APIClient",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AudioStream",
    "AuthenticationError",
    "ChatStream",
    "ClientOptions",
    "ClientStateError",
    "ConfigurationError",
    "ContentFilteredError",
    "ElevenLabsClient",
    "GenerationPendingError",
    "InvalidRequestError",
    "InvalidVideoIdError",
    "MalformedResponseError",
    "NotFoundError",
    "OpenAIClient",
    "PartialStreamError",
    "PermissionDeniedError",
    "PollPolicy",
    "PollStats",
    "QuotaExceededError",
    "RateLimitError",
    "ResilienceHook",
    "RetryableStatusError",
    "SSEDecoder",
    "SSEError",
    "ServerError",
    "ServerSentEvent",
    "SpeechSocket",
    "StabilityClient",
    "StreamInterruptedError",
    "StreamProtocolError",
    "StreamTimeoutError",
    "Transcription",
    "TranscriptionSegment",
    "TranscriptionWord",
    "Usage",
    "WebSocketClosedError",
    "WebSocketUnavailableError",
    "YouTubeClient",
    "default_transport_name",
    "make_sender",
    "poll",
]
