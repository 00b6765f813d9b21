"""The four API clients a workflow run uses, opened together against the sandbox or the real APIs.

``target`` picks where they talk: a sandbox app (in-process ``httpx.ASGITransport``, real base
URLs), a served sandbox (:class:`~opusclip_lib.sandbox.SandboxURLs` from ``serve()``, or the
root URL of one running in another process: real HTTP on loopback) or ``None`` for the real
services (keys from the environment). With ``cached=True`` each client sits behind a
:func:`~opusclip_lib.resilience.defaults_for` policy: retries with the SDKs' backoff, a circuit
breaker, per-provider concurrency and rate limits, and a small response cache for the JSON
APIs; images and audio are cached where they belong, on disk as stage artifacts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette

from opusclip_lib.api import (
    APIClient,
    ElevenLabsClient,
    OpenAIClient,
    StabilityClient,
    Usage,
    YouTubeClient,
)
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import ConcurrencyLimiter, Fallback, MemoryCache, Resilience
from opusclip_lib.resilience import defaults_for as resilience_defaults
from opusclip_lib.resilience.policy import STALE_TTL
from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, SandboxURLs
from opusclip_lib.sandbox.elevenlabs import ElevenLabsAPI
from opusclip_lib.sandbox.openai_chat import OpenAIAPI
from opusclip_lib.sandbox.stability import StabilityAPI
from opusclip_lib.sandbox.youtube import YouTubeAPI

T = TypeVar("T")

PROVIDERS = ("youtube", "openai", "stability", "elevenlabs")
JSON_PROVIDERS = frozenset({"youtube", "openai"})
CLIENTS: dict[str, type[APIClient]] = {"youtube": YouTubeClient, "openai": OpenAIClient,
                                       "stability": StabilityClient,
                                       "elevenlabs": ElevenLabsClient}
LOOPBACK_PREFIXES = {"youtube": YouTubeAPI.local_prefix, "openai": OpenAIAPI.local_prefix,
                     "stability": StabilityAPI.local_prefix,
                     "elevenlabs": ElevenLabsAPI.local_prefix}
"""Where each fake API lives under a served sandbox's root URL."""


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """Client-side bounds per provider (the optimised mode's per-stage API concurrency).

    ``concurrency``: requests in flight per provider; a provider left out keeps its policy's
    default (YouTube 10, OpenAI 50, Stability 60, ElevenLabs by ``elevenlabs_plan``), ``None``
    lifts the bound. ``throttle=False`` drops the rate and quota limiters, for a benchmark
    against an unlimited sandbox. ``connections`` sizes every client's HTTP pool (ElevenLabs
    keeps 15 by default). ``cache_size`` bounds each response cache and YouTube's ETag cache,
    so memory stays flat however many videos go through.
    """

    concurrency: Mapping[str, int | None] = field(default_factory=dict)
    throttle: bool = True
    connections: int | None = None
    cache_size: int = 64
    elevenlabs_plan: str = "creator"


UNLIMITED = ApiLimits(concurrency=dict.fromkeys(PROVIDERS), throttle=False, connections=512)
"""No client-side bound at all: measures the pipeline, not the providers' limits."""


@dataclass(frozen=True, slots=True)
class Services:
    youtube: YouTubeClient
    openai: OpenAIClient
    stability: StabilityClient
    elevenlabs: ElevenLabsClient

    def clients(self) -> dict[str, APIClient]:
        return {name: getattr(self, name) for name in PROVIDERS}

    def usage(self) -> dict[str, Usage]:
        """Calls, failures and units spent per provider so far."""
        return {name: client.usage for name, client in self.clients().items()}

    def policy(self, provider: str) -> Resilience | None:
        resilience = self.clients()[provider].resilience
        return resilience if isinstance(resilience, Resilience) else None


def live(result: T | Fallback[T]) -> T:
    """The value of a call, live or the last good one a policy served while the API failed."""
    return result.value if isinstance(result, Fallback) else result


def make_policy(provider: str, limits: ApiLimits, recorder: Recorder | None) -> Resilience:
    """The provider's default policy, bounded as ``limits`` says."""
    cache = MemoryCache(maxsize=limits.cache_size, stale_ttl=STALE_TTL)
    policy = resilience_defaults(provider, cache=cache, recorder=recorder,
                                 plan=limits.elevenlabs_plan)
    if provider not in JSON_PROVIDERS:
        policy.cache = None
    if not limits.throttle:
        policy.limiter = None
    if provider in limits.concurrency:
        bound = limits.concurrency[provider]
        policy.concurrency = None if bound is None else ConcurrencyLimiter(bound)
    return policy


@asynccontextmanager
async def open_services(target: Starlette | SandboxURLs | str | None = None, *,
                        cached: bool = True,
                        limits: ApiLimits | None = None, recorder: Recorder | None = None,
                        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
                        ) -> AsyncIterator[Services]:
    """``async with open_services(build_app(config)) as services:``, all four clients open.

    ``transports`` replaces a provider's transport (``{"openai": httpx.MockTransport(...)}``)
    to script an answer the sandbox would not give.
    """
    limits = limits or ApiLimits()
    overrides = transports or {}
    async with AsyncExitStack() as stack:
        opened: dict[str, Any] = {}
        for name in PROVIDERS:
            options: dict[str, Any] = {
                "recorder": recorder,
                "resilience": make_policy(name, limits, recorder) if cached else None,
            }
            if limits.connections is not None:
                options["limits"] = httpx.Limits(max_connections=limits.connections,
                                                 max_keepalive_connections=limits.connections,
                                                 keepalive_expiry=4.0)
            if name == "youtube":
                options["etag_cache_size"] = limits.cache_size
            if isinstance(target, SandboxURLs | str):
                root = target.root if isinstance(target, SandboxURLs) else target.rstrip("/")
                options["base_url"] = root + LOOPBACK_PREFIXES[name]
            if name in overrides:
                options["transport"] = overrides[name]
            elif isinstance(target, Starlette):
                options["transport"] = httpx.ASGITransport(target)
            key = None if target is None else SANDBOX_KEY
            opened[name] = await stack.enter_async_context(CLIENTS[name](key, **options))
        yield Services(**opened)


LATENCY_PROFILE_MS = {"youtube.videos.list": 100.0, "openai.chat.completions": 800.0,
                      "stability.generate": 2000.0, "elevenlabs.text_to_speech": 1000.0}
"""Typical latencies of the calls one video makes, by sandbox endpoint."""


def sandbox_config(latency_ms: Mapping[str, float] | None = None, *,
                   scale: float = 1.0) -> SandboxConfig:
    """An unlimited sandbox (no quota, rate or concurrency limit) answering after
    ``latency_ms * scale`` per endpoint: the four APIs' stand-in for workers and benchmarks."""
    config = SandboxConfig.unlimited()
    for endpoint, ms in (latency_ms or {}).items():
        config.set_latency(endpoint, ms * scale)
    return config
