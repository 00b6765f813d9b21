"""httpx clients for the four services, already authenticated, against an app or a served sandbox.

Each client carries its service's auth the way the real SDKs send it (YouTube ``key=`` query
parameter, OpenAI and Stability bearer tokens, ElevenLabs ``xi-api-key``), so a test or a
notebook cell only writes paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from starlette.applications import Starlette

from opusclip_lib.sandbox.app import REAL_BASE_URLS
from opusclip_lib.sandbox.server import SandboxURLs
from opusclip_lib.workflow.clients import ProviderClients

SANDBOX_KEY = "sandbox-key"


SandboxClients = ProviderClients[httpx.AsyncClient, httpx.AsyncClient, httpx.AsyncClient,
                                 httpx.AsyncClient]
"""One authenticated httpx client per provider: a test writes the paths itself."""


@asynccontextmanager
async def clients(target: Starlette | SandboxURLs, *, key: str = SANDBOX_KEY,
                  timeout_s: float = 30.0) -> AsyncIterator[SandboxClients]:
    """Clients on the real base URLs through ``ASGITransport(app)``, or on served URLs."""
    if isinstance(target, SandboxURLs):
        transport: httpx.AsyncBaseTransport | None = None
        bases = {name: getattr(target, name) for name in REAL_BASE_URLS}
    else:
        transport = httpx.ASGITransport(target)
        bases = REAL_BASE_URLS
    auth = {
        "youtube": {"params": {"key": key}},
        "openai": {"headers": {"authorization": f"Bearer {key}"}},
        "stability": {"headers": {"authorization": f"Bearer {key}"}},
        "elevenlabs": {"headers": {"xi-api-key": key}},
    }
    async with AsyncExitStack() as stack:
        opened = {
            name: await stack.enter_async_context(httpx.AsyncClient(
                base_url=bases[name], transport=transport, timeout=timeout_s, **auth[name]))
            for name in REAL_BASE_URLS
        }
        yield ProviderClients(**opened)
