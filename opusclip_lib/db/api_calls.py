"""A log of external API calls that doubles as a response cache.

Every call to a paid or rate-limited API is recorded (latency, cost, status); a successful
response stored with it can be served again for the same request hash, which is how the
notebooks replay expensive calls for free.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from opusclip_lib.db import repository, validate
from opusclip_lib.db.connection import Executor
from opusclip_lib.db.models import ApiCall, as_json
from opusclip_lib.db.schema import NAME_MAX
from opusclip_lib.db.validate import Column

API_CALLS = repository.Table("api_calls", [
    Column("provider", required=True, max_len=NAME_MAX),
    Column("endpoint", required=True, max_len=NAME_MAX),
    Column("request_hash", required=True, max_len=64),
    Column("status", "integer", required=True, low=0, high=validate.INT32_MAX),
    Column("latency_s", "number", required=True, low=0),
    Column("cost_usd", "number", default=0.0, low=0),
    Column("response", "json"),
])


def request_hash(request: Any) -> str:
    """Stable SHA-256 of a JSON-able request (key order does not matter)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def record_api_call(ex: Executor, provider: str, endpoint: str, request_digest: str, *,
                          status: int, latency_s: float, cost_usd: float = 0.0,
                          response: Any = None) -> ApiCall:
    values = API_CALLS.row({"provider": provider, "endpoint": endpoint,
                            "request_hash": request_digest, "status": status,
                            "latency_s": latency_s, "cost_usd": cost_usd, "response": response})
    row = await ex.fetchrow(f"{API_CALLS.insert_sql} RETURNING *", values,
                            name="record api call")
    assert row is not None
    return ApiCall.from_row(row)


async def cached_response(ex: Executor, provider: str, endpoint: str, request_digest: str, *,
                          max_age_s: float | None = None) -> Any | None:
    """The newest successful (2xx) stored response for this request, or ``None``."""
    age = "" if max_age_s is None else f" AND created_at >= {ex.backend.now_plus()}"
    params: list[Any] = [API_CALLS.lookup(column, value) for column, value in (
        ("provider", provider), ("endpoint", endpoint), ("request_hash", request_digest))]
    if max_age_s is not None:
        params.append(-validate.seconds(max_age_s, name="max_age_s"))
    row = await ex.fetchrow(
        "SELECT response FROM api_calls WHERE provider = ? AND endpoint = ? AND request_hash = ?"
        f" AND status BETWEEN 200 AND 299 AND response IS NOT NULL{age}"
        " ORDER BY created_at DESC, id DESC LIMIT 1", params, name="cached api response")
    return None if row is None else as_json(row["response"])


async def list_api_calls(ex: Executor, *, provider: str | None = None,
                         limit: int = 100) -> list[ApiCall]:
    where, params = ((" WHERE provider = ?", (API_CALLS.lookup("provider", provider),))
                     if provider else ("", ()))
    rows = await ex.fetch(f"SELECT * FROM api_calls{where} ORDER BY id DESC LIMIT ?",
                          (*params, validate.count(limit, name="limit")), name="list api calls")
    return [ApiCall.from_row(row) for row in rows]
