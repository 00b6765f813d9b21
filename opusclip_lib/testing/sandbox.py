"""Pytest fixtures for tests that talk to the sandbox: ``config``, ``sandbox`` and ``served``.

``config`` is a fresh :class:`SandboxConfig` a test may change before ``sandbox`` opens one httpx
client per service on an in-process app built from it, or ``served`` serves it over real HTTP on
loopback (what streams, WebSockets and mid-stream faults need).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from opusclip_lib.sandbox import (
    SandboxClients,
    SandboxConfig,
    SandboxURLs,
    build_app,
    clients,
    serve,
)


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig()


@pytest.fixture
async def sandbox(config: SandboxConfig) -> AsyncIterator[SandboxClients]:
    async with clients(build_app(config)) as opened:
        yield opened


@pytest.fixture
async def served(config: SandboxConfig) -> AsyncIterator[SandboxURLs]:
    async with serve(config) as urls:
        yield urls
