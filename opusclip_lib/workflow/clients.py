"""The one bundle of "a client per provider", generic in the clients it holds.

The workflow's :class:`~opusclip_lib.workflow.services.Services` holds the typed API clients; the
sandbox's fixtures hold plain authenticated httpx clients. This module imports no client, so a
bundle of any kind costs no import of the api layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from opusclip_lib.workflow.endpoints import PROVIDERS

YouTubeT = TypeVar("YouTubeT")
OpenAIT = TypeVar("OpenAIT")
StabilityT = TypeVar("StabilityT")
ElevenLabsT = TypeVar("ElevenLabsT")


@dataclass(frozen=True, slots=True)
class ProviderClients(Generic[YouTubeT, OpenAIT, StabilityT, ElevenLabsT]):
    """One open client per provider, each typed as its own."""

    youtube: YouTubeT
    openai: OpenAIT
    stability: StabilityT
    elevenlabs: ElevenLabsT

    def clients(self) -> dict[str, YouTubeT | OpenAIT | StabilityT | ElevenLabsT]:
        """The clients by provider name, in :data:`~opusclip_lib.workflow.endpoints.PROVIDERS`
        order."""
        return {provider: getattr(self, provider) for provider in PROVIDERS}
