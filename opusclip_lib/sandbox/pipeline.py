"""What every sandbox endpoint does around its own work: injected faults and simulated latency.

Faults are decided before the handler runs (as a broken proxy or overloaded backend would);
latency is awaited by the handler itself via :func:`work`, after auth and limit checks, because
the real services refuse bad keys and over-limit calls fast and spend time only on real work.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from opusclip_lib.sandbox.config import STREAM_FAULTS, Fault, SandboxConfig

Handler = Callable[[Request], Awaitable[Response]]

FAULT_STATUS = {"rate_limit": 429, "server_error": 500, "unavailable": 503, "timeout": 504}


class Service(Protocol):
    """A fake API: its config and how it words a failure."""

    config: SandboxConfig

    def fault_response(self, fault: Fault, status: int) -> Response:
        """The service's own error body for an injected fault with this HTTP status."""
        ...


async def work(config: SandboxConfig, endpoint: str) -> None:
    """Sleep for the configured latency of ``endpoint`` (nothing when none is set)."""
    seconds = config.latency_s(endpoint)
    if seconds > 0:
        await asyncio.sleep(seconds)


def route(service: Service, path: str, endpoint: str, handler: Handler,
          methods: list[str]) -> Route:
    """A Starlette route named ``endpoint`` whose handler is wrapped in fault injection."""

    async def respond(request: Request) -> Response:
        fault = service.config.take_fault(endpoint)
        if fault is None:
            return await handler(request)
        if fault.kind in STREAM_FAULTS:  # applied by the handler, mid-body (see .streams)
            request.state.stream_fault = fault
            return await handler(request)
        if fault.kind == "malformed":
            return truncated(await handler(request))
        if fault.kind == "timeout":
            await _hang(request, fault.hang_s)
        return service.fault_response(fault, FAULT_STATUS[fault.kind])

    return Route(path, respond, methods=methods, name=endpoint)


async def _hang(request: Request, seconds: float) -> None:
    """Wait ``seconds``, or until the client gives up (so the server can shut down promptly)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass


def retry_after(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (HTTP allows no fractions), never 0."""
    return {"retry-after": str(max(1, math.ceil(seconds)))}


def truncated(response: Response) -> Response:
    """The same response with only the first half of its body, as a dropped connection leaves it."""
    body = bytes(response.body)
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    return Response(body[: len(body) // 2], response.status_code, headers=headers)
