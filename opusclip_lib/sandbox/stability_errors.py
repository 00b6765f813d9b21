"""The fake Stability AI's error body, shared by its generate and job routes."""

from __future__ import annotations

import secrets

from starlette.responses import JSONResponse, Response


class StabilityError(Exception):
    """``{"id": <32 hex>, "name": ..., "errors": [...]}``."""

    def __init__(self, status: int, name: str, *errors: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(name)
        self.status = status
        self.headers = headers
        self.body = {"id": secrets.token_hex(16), "name": name, "errors": list(errors)}

    def response(self) -> Response:
        return JSONResponse(self.body, self.status, headers=self.headers)
