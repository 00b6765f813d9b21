"""One Starlette app serving the four fake APIs, routed by Host header *and* by path prefix.

Host routing lets client code keep the real base URLs (``https://api.openai.com/v1``) and swap
only the transport (``httpx.ASGITransport(app)``, or a cassette); path prefixes let one uvicorn
port on loopback serve all four (``http://127.0.0.1:PORT/openai/v1``). One app rather than four
keeps a single config, a single port and a single place to inject faults.

=============  ===========================================  =========================
service        real base URL (Host routing)                 loopback base URL
=============  ===========================================  =========================
YouTube        https://www.googleapis.com/youtube/v3        /youtube/v3
               (and https://youtube.googleapis.com/...)
OpenAI         https://api.openai.com/v1                    /openai/v1
Stability      https://api.stability.ai                     /stability
ElevenLabs     https://api.elevenlabs.io                    /elevenlabs
=============  ===========================================  =========================
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Host, Mount, Router

from opusclip_lib.sandbox.catalogue import Catalogue
from opusclip_lib.sandbox.config import SandboxConfig
from opusclip_lib.sandbox.elevenlabs import ElevenLabsAPI
from opusclip_lib.sandbox.not_found import unknown_route
from opusclip_lib.sandbox.openai_audio import transcription_route
from opusclip_lib.sandbox.openai_chat import OpenAIAPI
from opusclip_lib.sandbox.stability import StabilityAPI
from opusclip_lib.sandbox.youtube import YouTubeAPI

REAL_BASE_URLS = {
    "youtube": "https://www.googleapis.com/youtube/v3",
    "openai": "https://api.openai.com/v1",
    "stability": "https://api.stability.ai",
    "elevenlabs": "https://api.elevenlabs.io",
}


@dataclass(frozen=True)
class Sandbox:
    """What ``app.state.sandbox`` holds: the config and the services with their counters."""

    config: SandboxConfig
    youtube: YouTubeAPI
    openai: OpenAIAPI
    stability: StabilityAPI
    elevenlabs: ElevenLabsAPI

    @property
    def services(self) -> tuple[YouTubeAPI | OpenAIAPI | StabilityAPI | ElevenLabsAPI, ...]:
        return self.youtube, self.openai, self.stability, self.elevenlabs

    def reset(self) -> None:
        """Forget quota used, rate-limit windows and spent credits (faults and latency stay)."""
        for service in self.services:
            service.reset()


def build_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox as an ASGI app; ``app.state.sandbox`` is its :class:`Sandbox`."""
    config = config or SandboxConfig()
    openai = OpenAIAPI(config)
    openai.routes.append(transcription_route(openai))
    sandbox = Sandbox(config, YouTubeAPI(config, Catalogue.load(config.catalogue_path)),
                      openai, StabilityAPI(config), ElevenLabsAPI(config))
    prefixed: list[BaseRoute] = []
    hosted: list[BaseRoute] = []
    for service in sandbox.services:
        service_app = Router(routes=service.routes,
                             default=unknown_route(service.local_prefix.split("/")[1]))
        prefixed.append(Mount(service.local_prefix, app=service_app))
        hosted += [Host(host, Router(routes=[Mount(service.base_path, app=service_app)]))
                   for host in service.hosts]
    # Prefixes first: loopback benchmarks then skip the Host checks. No real-host path starts
    # with another service's prefix, so the order never changes which service answers.
    app = Starlette(routes=prefixed + hosted)
    app.state.sandbox = sandbox
    return app
