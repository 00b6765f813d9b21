"""What each fake API answers for a path it does not serve: its own 404 body, never plain text.

Real clients parse error bodies (the official SDKs raise ``NotFoundError`` from them), so a
``Not Found`` in plain text would be an error about the error. The bodies follow BEHAVIOUR.md:
Google's envelope, OpenAI's ``{"error": {...}}`` with ``Invalid URL (METHOD /path)``, FastAPI's
``{"detail": "Not Found"}`` for ElevenLabs and Stability's ``{"id", "name", "errors"}``.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def _youtube(method: str, path: str) -> dict[str, Any]:
    message = f"The requested URL {path} was not found on this server."
    return {"error": {"code": 404, "message": message, "errors": [
        {"message": message, "domain": "global", "reason": "notFound"}], "status": "NOT_FOUND"}}


def _openai(method: str, path: str) -> dict[str, Any]:
    return {"error": {"message": f"Invalid URL ({method} {path})",
                      "type": "invalid_request_error", "param": None, "code": None}}


def _elevenlabs(method: str, path: str) -> dict[str, Any]:
    return {"detail": "Not Found"}


def _stability(method: str, path: str) -> dict[str, Any]:
    return {"id": secrets.token_hex(16), "name": "not_found",
            "errors": [f"path: {method} {path} does not exist"]}


BODIES = {"youtube": _youtube, "openai": _openai, "elevenlabs": _elevenlabs,
          "stability": _stability}


def unknown_route(service: str) -> ASGIApp:
    """The ``default`` app of a service's router: its 404 for HTTP, a refused WebSocket."""
    body = BODIES[service]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "not found"})
            return
        await JSONResponse(body(scope["method"], scope["path"]), 404)(scope, receive, send)

    return app
