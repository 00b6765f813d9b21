"""The four API clients on a cassette: how notebooks and tests reach YouTube, OpenAI, Stability AI
and ElevenLabs, the same code whether it replays, records against the sandbox or goes live.

::

    async with api_clients("20_api_basics", "youtube", recorder=recorder) as api:
        videos = await api.youtube.videos(["opusSample1"])

``OPUSCLIP_RECORD`` (see :mod:`opusclip_lib.cassettes`) decides what answers:

========  =====================================================================================
mode      the block's requests
========  =====================================================================================
none      replay from ``cassettes/<folder>/<name>.yaml`` through the clients' default transport,
          with placeholder keys: no network, no environment variable needed
sandbox   go to the in-process sandbox (``httpx.ASGITransport(build_app())``) on the real base
          URLs and are recorded
live      go to the real services with the keys in ``YOUTUBE_API_KEY`` etc., and are recorded
========  =====================================================================================

Give every block its own ``name``: recording rewrites the whole cassette of a block.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pandas as pd
from httpx_aiohttp import AiohttpTransport
from starlette.applications import Starlette

from opusclip_lib.api import (
    APIClient,
    ElevenLabsClient,
    OpenAIClient,
    StabilityClient,
    YouTubeClient,
)
from opusclip_lib.cassettes import REDACTED, RecordMode, record_mode, use_cassette
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import defaults_for
from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, build_app

C = TypeVar("C", bound=APIClient)

CLIENTS: dict[str, type[APIClient]] = {"youtube": YouTubeClient, "openai": OpenAIClient,
                                       "stability": StabilityClient,
                                       "elevenlabs": ElevenLabsClient}
DEFAULT_KEYS: dict[RecordMode, str | None] = {"none": REDACTED, "sandbox": SANDBOX_KEY,
                                              "live": None}
"""Replay sends the placeholder the cassettes hold; live reads each client's variable."""


@dataclass(frozen=True, slots=True)
class APIClients:
    """The four open clients, and where their answers come from."""

    youtube: YouTubeClient
    openai: OpenAIClient
    stability: StabilityClient
    elevenlabs: ElevenLabsClient
    mode: RecordMode
    cassette: Path

    def clients(self) -> dict[str, APIClient]:
        return {provider: getattr(self, provider) for provider in CLIENTS}

    def usage(self) -> pd.DataFrame:
        """Calls, failures and units spent per provider so far in this block."""
        return pd.DataFrame([
            {"provider": provider, "calls": client.usage.calls,
             "failures": client.usage.failures, "unit": client.usage.unit,
             "spent": client.usage.cost}
            for provider, client in self.clients().items()]).set_index("provider")


class PacedTransport(httpx.AsyncBaseTransport):
    """Waits ``seconds`` before ``inner`` answers: a replayed call then takes as long as the
    sandbox took when it was recorded, so a replay keeps the concurrency of a real run (vcrpy
    answers at once, without ever suspending the task)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.seconds)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def sandbox_config(latency: Mapping[str, float]) -> SandboxConfig:
    """The sandbox a block records against: default limits, ``latency`` seconds per provider."""
    sandbox = SandboxConfig()
    for provider, seconds in latency.items():
        sandbox.set_latency(provider, seconds * 1000)
    return sandbox


def _transport(mode: RecordMode, provider: str, app: Starlette | None,
               seconds: float) -> httpx.AsyncBaseTransport | None:
    """``None`` is the clients' default sender (aiohttp, or ``OPUSCLIP_HTTP_TRANSPORT``)."""
    if app is not None:
        return httpx.ASGITransport(app)
    if mode == "none" and seconds > 0:
        # The default sender cannot be wrapped; httpx-aiohttp's transport reaches vcrpy through
        # the same aiohttp patch, so the replay path is the default one plus the wait.
        return PacedTransport(AiohttpTransport(limits=CLIENTS[provider].default_limits), seconds)
    return None


@asynccontextmanager
async def api_clients(folder: str, name: str, *, recorder: Recorder | None = None,
                      resilience: bool = False, latency: Mapping[str, float] | None = None,
                      keys: Mapping[str, str] | None = None) -> AsyncIterator[APIClients]:
    """Open the four clients on ``cassettes/<folder>/<name>.yaml`` (see the module docstring).

    ``recorder`` gets every HTTP call (and, with ``resilience=True``, each provider's
    :func:`~opusclip_lib.resilience.defaults_for` policy records its attempts too).
    ``latency``: seconds each provider takes to answer, in the sandbox when recording and on
    replay, so the timing shape survives the cassette; live services take what they take.
    ``keys`` replaces a provider's key (an invalid one, to show the error).
    """
    mode = record_mode()
    latency = latency or {}
    chosen = {provider: (keys or {}).get(provider, DEFAULT_KEYS[mode]) for provider in CLIENTS}
    in_use = [key or os.environ.get(CLIENTS[provider].key_variable)
              for provider, key in chosen.items()]
    app = build_app(sandbox_config(latency)) if mode == "sandbox" else None

    def client(provider: str, client_class: type[C]) -> C:
        return client_class(
            chosen[provider], recorder=recorder,
            resilience=defaults_for(provider, recorder=recorder) if resilience else None,
            transport=_transport(mode, provider, app, latency.get(provider, 0.0)))

    with use_cassette(folder, name, mode=mode, secrets=in_use) as cassette:
        async with AsyncExitStack() as stack:
            enter = stack.enter_async_context
            yield APIClients(youtube=await enter(client("youtube", YouTubeClient)),
                             openai=await enter(client("openai", OpenAIClient)),
                             stability=await enter(client("stability", StabilityClient)),
                             elevenlabs=await enter(client("elevenlabs", ElevenLabsClient)),
                             mode=mode, cassette=Path(cassette.path))
