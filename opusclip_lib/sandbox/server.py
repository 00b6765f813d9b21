"""Run the sandbox over real HTTP on loopback, in a background thread with its own event loop.

A thread (not a task on the caller's loop) keeps a notebook's loop free and lets the caller
flip ``config`` knobs while requests are in flight; for a benchmark that needs the second core,
run ``python -m opusclip_lib.sandbox`` in another process instead.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from opusclip_lib.sandbox.app import Sandbox, build_app
from opusclip_lib.sandbox.config import SandboxConfig


@dataclass(frozen=True)
class SandboxURLs:
    """Base URLs of a running sandbox, one per service, ready for ``base_url=``."""

    root: str
    app: Starlette

    @property
    def youtube(self) -> str:
        return f"{self.root}/youtube/v3"

    @property
    def openai(self) -> str:
        return f"{self.root}/openai/v1"

    @property
    def stability(self) -> str:
        return f"{self.root}/stability"

    @property
    def elevenlabs(self) -> str:
        return f"{self.root}/elevenlabs"

    @property
    def sandbox(self) -> Sandbox:
        return self.app.state.sandbox


def uvicorn_config(app: Starlette, **overrides: object) -> uvicorn.Config:
    """Quiet, lean settings: no access log, no lifespan, a short graceful shutdown."""
    settings: dict[str, object] = {"log_level": "warning", "access_log": False,
                                   "lifespan": "off", "timeout_graceful_shutdown": 2,
                                   "backlog": 4096}
    return uvicorn.Config(app, **(settings | overrides))


@asynccontextmanager
async def serve(config: SandboxConfig | None = None, *, host: str = "127.0.0.1",
                port: int = 0) -> AsyncIterator[SandboxURLs]:
    """``async with serve(config) as urls:`` runs uvicorn until the block exits (port 0: any)."""
    app = build_app(config)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound_host, bound_port = sock.getsockname()[:2]
        server = uvicorn.Server(uvicorn_config(app))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name=f"sandbox-uvicorn-{bound_port}", daemon=True)
        thread.start()
        try:
            while not server.started:
                if not thread.is_alive():
                    raise RuntimeError("the sandbox server stopped during start-up")
                await asyncio.sleep(0.01)
            yield SandboxURLs(f"http://{bound_host}:{bound_port}", app)
        finally:
            server.should_exit = True
            await asyncio.to_thread(thread.join)
