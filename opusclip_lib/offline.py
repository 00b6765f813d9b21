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
from opusclip_lib.workflow import Services

C = TypeVar("C", bound=APIClient)

CLIENTS: dict[str, type[APIClient]] = {"youtube": YouTubeClient, "openai": OpenAIClient,
                                       "stability": StabilityClient,
                                       "elevenlabs": ElevenLabsClient}
DEFAULT_KEYS: dict[RecordMode, str | None] = {"none": REDACTED, "sandbox": SANDBOX_KEY,
                                              "live": None}
"""Replay sends the placeholder the cassettes hold; live reads each client's variable."""


def usage_table(services: Services) -> pd.DataFrame:
    """Calls, failures and units spent per provider so far, one row each."""
    return pd.DataFrame([
        {"provider": provider, "calls": usage.calls, "failures": usage.failures,
         "unit": usage.unit, "spent": usage.cost}
        for provider, usage in services.usage().items()]).set_index("provider")


class PacedTransport(httpx.AsyncBaseTransport):
    """Waits ``delay_s`` before ``inner`` answers: a replayed call then takes as long as the
    sandbox took when it was recorded, so a replay keeps the concurrency of a real run (vcrpy
    answers at once, without ever suspending the task)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.delay_s)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def recording_sandbox(latency_s: Mapping[str, float]) -> SandboxConfig:
    """The sandbox a block records against: the default limits (unlike the unlimited
    :func:`opusclip_lib.sandbox.endpoints.sandbox_config`), ``latency_s`` per provider."""
    sandbox = SandboxConfig()
    for provider, seconds in latency_s.items():
        sandbox.set_latency(provider, seconds * 1000)
    return sandbox


def _transport(mode: RecordMode, provider: str, app: Starlette | None,
               delay_s: float) -> httpx.AsyncBaseTransport | None:
    """``None`` is the clients' default sender (aiohttp, or ``OPUSCLIP_HTTP_TRANSPORT``)."""
    if app is not None:
        return httpx.ASGITransport(app)
    if mode == "none" and delay_s > 0:
        # The default sender cannot be wrapped; httpx-aiohttp's transport reaches vcrpy through
        # the same aiohttp patch, so the replay path is the default one plus the wait.
        return PacedTransport(AiohttpTransport(limits=CLIENTS[provider].default_limits), delay_s)
    return None


@asynccontextmanager
async def api_clients(folder: str, name: str, *, recorder: Recorder | None = None,
                      resilience: bool = False, latency_s: Mapping[str, float] | None = None,
                      keys: Mapping[str, str] | None = None) -> AsyncIterator[Services]:
    """Open the four clients on ``cassettes/<folder>/<name>.yaml`` (see the module docstring).

    ``recorder`` gets every HTTP call (and, with ``resilience=True``, each provider's
    :func:`~opusclip_lib.resilience.defaults_for` policy records its attempts too).
    ``latency_s``: what each provider takes to answer, in the sandbox when recording and on
    replay, so the timing shape survives the cassette; live services take what they take.
    ``keys`` replaces a provider's key (an invalid one, to show the error).
    """
    mode = record_mode()
    latency_s = latency_s or {}
    chosen = {provider: (keys or {}).get(provider, DEFAULT_KEYS[mode]) for provider in CLIENTS}
    in_use = [key or os.environ.get(CLIENTS[provider].key_variable)
              for provider, key in chosen.items()]
    app = build_app(recording_sandbox(latency_s)) if mode == "sandbox" else None

    def client(provider: str, client_class: type[C]) -> C:
        return client_class(
            chosen[provider], recorder=recorder,
            resilience=defaults_for(provider, recorder=recorder) if resilience else None,
            transport=_transport(mode, provider, app, latency_s.get(provider, 0.0)))

    with use_cassette(folder, name, mode=mode, secrets=in_use):
        async with AsyncExitStack() as stack:
            enter = stack.enter_async_context
            yield Services(youtube=await enter(client("youtube", YouTubeClient)),
                           openai=await enter(client("openai", OpenAIClient)),
                           stability=await enter(client("stability", StabilityClient)),
                           elevenlabs=await enter(client("elevenlabs", ElevenLabsClient)))
