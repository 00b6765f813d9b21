"""Offline stand-ins for YouTube Data API v3, OpenAI, Stability AI and ElevenLabs.

In process, on the real base URLs (routing by Host header)::

    app = build_app(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app),
                                 base_url="https://api.openai.com/v1") as client: ...

Over real HTTP on loopback, one port for all four (routing by path prefix, see :mod:`.app`)::

    async with serve(config) as urls:      # urls.openai == "http://127.0.0.1:PORT/openai/v1"
        async with clients(urls) as api:   # authenticated httpx clients, one per service
            await api.youtube.get("/videos", params={"part": "snippet", "id": "opusSample1"})

Knobs live on :class:`SandboxConfig` and may be changed while the server runs::

    config.set_latency("openai", Latency.lognormal(800, 0.4, seed=1))   # or "*", or an endpoint
    config.inject("youtube.videos.list", "server_error", times=3)       # the next 3 calls fail
    config.inject("elevenlabs", "rate_limit", probability=0.1, retry_after_s=2)
    config.openai.requests_per_minute = 3                               # None turns a limit off
    SandboxConfig.unlimited()                                           # every limit off

Streams (SSE chat completions, chunked ``/stream`` speech, the text-to-speech WebSocket) need the
served sandbox: in process, ``httpx.ASGITransport`` hands over a body only once it is complete::

    config.openai.token_latency = Latency.fixed(20)                     # one token every 20 ms
    config.inject("openai.chat.completions", "cut", after_chunks=5)     # drop it mid-stream
    config.inject("elevenlabs.text_to_speech.stream", "stall", after_chunks=2, hang_s=30)
    urls.sandbox.openai.streams.wait_idle(5)                            # every stream closed?

Keys: any non-empty key is accepted, except keys starting with ``"invalid"``.

Transcription (``POST /v1/audio/transcriptions``) returns the true words of the bundled sample
videos, recognised by their sound (:mod:`.fingerprint`); any other audio gets a stand-in whose
words follow its voiced stretches and say they are a stand-in (:mod:`.transcription`; header
``x-sandbox-transcript: stand-in``).
``python -m opusclip_lib.sandbox --port 8765`` serves it from another process.
"""

from __future__ import annotations

from opusclip_lib.sandbox.app import REAL_BASE_URLS, Sandbox, build_app
from opusclip_lib.sandbox.clients import SANDBOX_KEY, SandboxClients, clients
from opusclip_lib.sandbox.config import (
    ENDPOINTS,
    ElevenLabsSettings,
    Fault,
    Latency,
    OpenAISettings,
    SandboxConfig,
    StabilitySettings,
    YouTubeSettings,
)
from opusclip_lib.sandbox.server import SandboxURLs, serve

__all__ = [
    "ENDPOINTS", "REAL_BASE_URLS", "SANDBOX_KEY", "ElevenLabsSettings", "Fault", "Latency",
    "OpenAISettings", "Sandbox", "SandboxClients", "SandboxConfig", "SandboxURLs",
    "StabilitySettings", "YouTubeSettings", "build_app", "clients", "serve",
]
