"""The sandbox as a workflow target: its endpoints, in process or served, and its latency profile.

The workflow takes :class:`~opusclip_lib.workflow.endpoints.Endpoints` and never imports the
sandbox; this adapter is the one place that knows both::

    async with open_services(sandbox_endpoints(build_app(config))) as services: ...   # in process
    async with serve(config) as urls, open_services(sandbox_endpoints(urls)) as services: ...

The sandbox's YouTube serves metadata, not media, so its endpoints point a YouTube id at the
bundled sample talk (the second sample for its own id) instead of downloading it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx
from starlette.applications import Starlette

from opusclip_lib.media.samples import SAMPLE_TITLES, SAMPLE_VIDEO_ID, sample_video
from opusclip_lib.sandbox.app import REAL_BASE_URLS
from opusclip_lib.sandbox.clients import SANDBOX_KEY
from opusclip_lib.sandbox.config import SandboxConfig
from opusclip_lib.sandbox.elevenlabs import ElevenLabsAPI
from opusclip_lib.sandbox.openai_chat import OpenAIAPI
from opusclip_lib.sandbox.server import SandboxURLs
from opusclip_lib.sandbox.stability import StabilityAPI
from opusclip_lib.sandbox.youtube import YouTubeAPI
from opusclip_lib.workflow.endpoints import PROVIDERS, Endpoint, Endpoints

LOOPBACK_PREFIXES = {"youtube": YouTubeAPI.local_prefix, "openai": OpenAIAPI.local_prefix,
                     "stability": StabilityAPI.local_prefix,
                     "elevenlabs": ElevenLabsAPI.local_prefix}
"""Where each fake API lives under a served sandbox's root URL."""

LATENCY_PROFILE_MS = {"youtube.videos.list": 100.0, "openai.chat.completions": 800.0,
                      "openai.audio.transcriptions": 1500.0,
                      "stability.generate": 2000.0, "elevenlabs.text_to_speech": 1000.0}
"""Typical latencies of the calls one video makes, by sandbox endpoint."""


def sample_media(youtube_id: str) -> Path:
    """The offline stand-in for downloading: a bundled sample's own media, else the first's."""
    return sample_video(youtube_id if youtube_id in SAMPLE_TITLES else SAMPLE_VIDEO_ID)


def sandbox_endpoints(target: Starlette | SandboxURLs | str, *,
                      key: str = SANDBOX_KEY) -> Endpoints:
    """An app in process (``ASGITransport``, the real base URLs), a served sandbox, or the root
    URL of one running in another process."""
    if isinstance(target, Starlette):
        found = {name: Endpoint(REAL_BASE_URLS[name], key, httpx.ASGITransport(target))
                 for name in PROVIDERS}
        label = "sandbox"
    else:
        root = target.root if isinstance(target, SandboxURLs) else target.rstrip("/")
        found = {name: Endpoint(root + LOOPBACK_PREFIXES[name], key) for name in PROVIDERS}
        label = root
    return Endpoints(**found, youtube_media=sample_media, name=label)


def sandbox_config(latency_ms: Mapping[str, float] | None = None, *,
                   scale: float = 1.0) -> SandboxConfig:
    """An unlimited sandbox (no quota, rate or concurrency limit) answering after
    ``latency_ms * scale`` per endpoint: the four APIs' stand-in for workers and benchmarks."""
    config = SandboxConfig.unlimited()
    for endpoint, ms in (latency_ms or {}).items():
        config.set_latency(endpoint, ms * scale)
    return config
