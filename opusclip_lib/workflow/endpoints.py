"""Where each provider's API is reached: one :class:`Endpoint` per provider, built here only.

An endpoint is a base URL, a key and optionally a transport. Any base URL works with a real key:
the provider itself, a proxy, a gateway, or an OpenAI-compatible local server; the clients only
append the documented paths. Three ways to get a set of them:

* :func:`endpoints_from_env` (``--target live``): the real services, each base URL overridable
  with ``OPUSCLIP_<PROVIDER>_BASE_URL`` (``OPUSCLIP_OPENAI_BASE_URL=http://localhost:8000/v1``),
  keys from the providers' usual variables (``OPENAI_API_KEY``, ...);
* :func:`endpoints_at` (``--target URL``): one root serving all four under :data:`ROOT_PATHS`,
  as a served sandbox or a gateway does;
* :func:`opusclip_lib.sandbox.endpoints.sandbox_endpoints` (``--target sandbox``): the offline
  stand-in. It lives with the sandbox: the workflow never imports the sandbox.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

PROVIDERS = ("youtube", "openai", "stability", "elevenlabs")
KEY_VARIABLES = {"youtube": "YOUTUBE_API_KEY", "openai": "OPENAI_API_KEY",
                 "stability": "STABILITY_API_KEY", "elevenlabs": "ELEVENLABS_API_KEY"}
ROOT_PATHS = {"youtube": "/youtube/v3", "openai": "/openai/v1", "stability": "/stability",
              "elevenlabs": "/elevenlabs"}
"""Where each API lives under one root URL (the layout of a served sandbox)."""
ROOT_KEY = "no-key"
"""Sent to a root when the provider's key variable is unset (a served sandbox takes any key)."""


def base_url_variable(provider: str) -> str:
    return f"OPUSCLIP_{provider.upper()}_BASE_URL"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """``base_url``/``key`` ``None``: the provider's own URL, the key from its variable.
    ``transport``: an httpx transport the client will own (``ASGITransport``, ``MockTransport``).
    """

    base_url: str | None = None
    key: str | None = field(default=None, repr=False)
    transport: httpx.AsyncBaseTransport | None = None


YouTubeMedia = Callable[[str], Path]
"""Where a YouTube video's media comes from without downloading it (a stand-in's answer)."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """One endpoint per provider. ``youtube_media``: ``None`` downloads a YouTube id's watch
    page with yt-dlp; a stand-in with no media of its own (the sandbox) names a local file."""

    youtube: Endpoint = Endpoint()
    openai: Endpoint = Endpoint()
    stability: Endpoint = Endpoint()
    elevenlabs: Endpoint = Endpoint()
    youtube_media: YouTubeMedia | None = None
    name: str = "live"

    def of(self, provider: str) -> Endpoint:
        endpoint: Endpoint = getattr(self, provider)
        return endpoint

    def with_transports(self, transports: Mapping[str, httpx.AsyncBaseTransport]) -> Endpoints:
        """The same endpoints, some providers answered by ``transports`` (a scripted fault)."""
        changed = {name: replace(self.of(name), transport=transport)
                   for name, transport in transports.items()}
        return replace(self, youtube=changed.get("youtube", self.youtube),
                       openai=changed.get("openai", self.openai),
                       stability=changed.get("stability", self.stability),
                       elevenlabs=changed.get("elevenlabs", self.elevenlabs))


def _endpoints(found: Mapping[str, Endpoint], name: str) -> Endpoints:
    """``found`` holds one endpoint per name in :data:`PROVIDERS`."""
    return Endpoints(youtube=found["youtube"], openai=found["openai"],
                     stability=found["stability"], elevenlabs=found["elevenlabs"], name=name)


def endpoints_from_env(environ: Mapping[str, str] | None = None) -> Endpoints:
    """The real services, or whatever ``OPUSCLIP_<PROVIDER>_BASE_URL`` points at."""
    env = os.environ if environ is None else environ
    found = {name: Endpoint(base_url=env.get(base_url_variable(name)) or None,
                            key=env.get(KEY_VARIABLES[name]) or None)
             for name in PROVIDERS}
    return _endpoints(found, "live")


def endpoints_at(root: str, environ: Mapping[str, str] | None = None) -> Endpoints:
    """All four under one root URL (:data:`ROOT_PATHS`); keys from the usual variables."""
    env = os.environ if environ is None else environ
    base = root.rstrip("/")
    found = {name: Endpoint(base_url=base + ROOT_PATHS[name],
                            key=env.get(KEY_VARIABLES[name]) or ROOT_KEY)
             for name in PROVIDERS}
    return _endpoints(found, base)
