"""pytest fixtures for tests that talk to the sandbox: ``pytest_plugins = ("opusclip_lib.sandbox.testing",)``.

``config`` is a fresh :class:`SandboxConfig` a test may change before ``sandbox`` opens one httpx
client per service on an in-process app built from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from opusclip_lib.sandbox import SandboxClients, SandboxConfig, build_app, clients


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig()


@pytest.fixture
async def sandbox(config: SandboxConfig) -> AsyncIterator[SandboxClients]:
    async with clients(build_app(config)) as opened:
        yield opened
