"""The four API clients a workflow run uses, opened together on one set of endpoints.

Where they talk is an :class:`~opusclip_lib.workflow.endpoints.Endpoints`: the real services
(``None``: :func:`~opusclip_lib.workflow.endpoints.endpoints_from_env`), any gateway or
compatible server, or the sandbox through its own adapter
(:func:`opusclip_lib.sandbox.endpoints.sandbox_endpoints`). With ``cached=True`` each client
sits behind a :func:`~opusclip_lib.resilience.defaults_for` policy: retries with the SDKs'
backoff, a circuit breaker, per-provider concurrency and rate limits, and a small response cache
for the JSON APIs; images and audio are cached where they belong, on disk as stage artifacts.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from opusclip_lib.api import (
    APIClient,
    ConfigurationError,
    ElevenLabsClient,
    OpenAIClient,
    StabilityClient,
    Usage,
    YouTubeClient,
)
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import Fallback, MemoryCache, Resilience
from opusclip_lib.resilience import defaults_for as resilience_defaults
from opusclip_lib.resilience.breaker import DEFAULT_COOL_DOWN_S
from opusclip_lib.resilience.policy import STALE_TTL_S
from opusclip_lib.workflow.clients import ProviderClients
from opusclip_lib.workflow.endpoints import PROVIDERS, Endpoints, YouTubeMedia, endpoints_from_env
from opusclip_lib.workflow.paid import ExchangeTap

T = TypeVar("T")

JSON_PROVIDERS = frozenset({"youtube", "openai"})
CLIENTS: dict[str, type[APIClient]] = {"youtube": YouTubeClient, "openai": OpenAIClient,
                                       "stability": StabilityClient,
                                       "elevenlabs": ElevenLabsClient}


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """Client-side bounds per provider (the optimised mode's per-stage API concurrency).

    ``concurrency``: requests in flight per provider; a provider left out keeps its policy's
    default (YouTube 10, OpenAI 50, Stability 60, ElevenLabs by ``elevenlabs_plan``), ``None``
    lifts the bound. ``throttle=False`` drops the rate and quota limiters, for a benchmark
    against an unlimited sandbox. ``connections`` sizes every client's HTTP pool (ElevenLabs
    keeps 15 by default). ``cache_size`` bounds each response cache and YouTube's ETag cache,
    so memory stays flat however many videos go through. ``response_cache=False`` drops the
    response caches: a benchmark whose videos ask the same questions would otherwise measure
    the cache, not the pipeline.
    """

    concurrency: Mapping[str, int | None] = field(default_factory=dict)
    throttle: bool = True
    connections: int | None = None
    cache_size: int = 64
    elevenlabs_plan: str = "creator"
    response_cache: bool = True


UNLIMITED = ApiLimits(concurrency=dict.fromkeys(PROVIDERS), throttle=False, connections=512)
"""No client-side bound at all: measures the pipeline, not the providers' limits."""


@dataclass(frozen=True, slots=True)
class Services(ProviderClients[YouTubeClient, OpenAIClient, StabilityClient, ElevenLabsClient]):
    """The four API clients, open: what a workflow run, the CLI and a cassette block use."""

    youtube_media: YouTubeMedia | None = None
    """From the endpoints: where a YouTube id's media comes from when not downloaded."""

    def usage(self) -> dict[str, Usage]:
        """Calls, failures and units spent per provider so far."""
        return {name: client.usage for name, client in self.clients().items()}

    def policy(self, provider: str) -> Resilience | None:
        resilience = self.clients()[provider].resilience
        return resilience if isinstance(resilience, Resilience) else None


def live(result: T | Fallback[T]) -> T:
    """The value of a call, live or the last good one a policy served while the API failed."""
    return result.value if isinstance(result, Fallback) else result


def make_policy(provider: str, limits: ApiLimits, recorder: Recorder | None, *,
                cool_down_s: float = DEFAULT_COOL_DOWN_S) -> Resilience:
    """The provider's default policy, bounded as ``limits`` says."""
    cached = provider in JSON_PROVIDERS and limits.response_cache
    return resilience_defaults(
        provider, recorder=recorder, plan=limits.elevenlabs_plan,
        limiter="default" if limits.throttle else None,
        cache=MemoryCache(maxsize=limits.cache_size, stale_ttl_s=STALE_TTL_S) if cached else None,
        cached=cached, concurrency=limits.concurrency.get(provider, "default"),
        cool_down_s=cool_down_s)


class MissingKey(httpx.AsyncBaseTransport):
    """The transport of a provider whose key is not set: a run that never calls it (a local
    file needs no YouTube, ``--no-voiceover`` no ElevenLabs) needs no key; the first call
    raises :class:`~opusclip_lib.api.ConfigurationError` naming the variable to set."""

    def __init__(self, provider: str, variable: str) -> None:
        self.provider = provider
        self.variable = variable

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise ConfigurationError(
            f"{self.provider}: no API key: set the environment variable {self.variable}")


@asynccontextmanager
async def open_services(endpoints: Endpoints | None = None, *, cached: bool = True,
                        limits: ApiLimits | None = None, recorder: Recorder | None = None,
                        cool_down_s: float = DEFAULT_COOL_DOWN_S,
                        ) -> AsyncIterator[Services]:
    """``async with open_services(endpoints) as services:``, all four clients open.

    ``None``: the real services (:func:`endpoints_from_env`). To script an answer the sandbox
    would not give, replace a provider's transport:
    ``endpoints.with_transports({"openai": httpx.MockTransport(...)})``. ``cool_down_s`` is how
    long each provider's circuit breaker stays open (a short one brings a job deferred by an
    open breaker back within a demo).
    """
    endpoints = endpoints_from_env() if endpoints is None else endpoints
    limits = limits or ApiLimits()
    tap = ExchangeTap(recorder)  # the paid calls' log (workflow.paid), then ``recorder``
    async with AsyncExitStack() as stack:
        opened: dict[str, Any] = {}
        for name in PROVIDERS:
            endpoint = endpoints.of(name)
            options: dict[str, Any] = {
                "recorder": tap,
                "resilience": (make_policy(name, limits, recorder, cool_down_s=cool_down_s)
                               if cached else None),
                "base_url": endpoint.base_url,
            }
            if limits.connections is not None:
                options["limits"] = httpx.Limits(max_connections=limits.connections,
                                                 max_keepalive_connections=limits.connections,
                                                 keepalive_expiry=4.0)
            if name == "youtube":
                options["etag_cache_size"] = limits.cache_size
            client = CLIENTS[name]
            key = endpoint.key or os.environ.get(client.key_variable)
            if endpoint.transport is not None:
                options["transport"] = endpoint.transport
            elif not key:
                key, options["transport"] = "unset", MissingKey(name, client.key_variable)
            opened[name] = await stack.enter_async_context(client(key, **options))
        yield Services(**opened, youtube_media=endpoints.youtube_media)
