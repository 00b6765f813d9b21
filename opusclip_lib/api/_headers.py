"""What the response headers say about a call: its request id and when to try again.

The order of the retry hints follows the official OpenAI and ElevenLabs SDKs: ``retry-after-ms``
(OpenAI's precise hint), then ``retry-after`` (seconds or an HTTP date), then ``x-ratelimit-reset``
(ElevenLabs' Fern SDK reads it as a Unix time; small values are taken as seconds from now).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

REQUEST_ID_HEADERS = ("x-request-id", "request-id")
EPOCH_THRESHOLD = 1_000_000_000.0  # a reset above this is a Unix time, not a delay


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """OpenAI and Stability send ``x-request-id``, ElevenLabs ``request-id``."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _http_date_delay(text: str, now: float) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return moment.timestamp() - now


def retry_after_of(headers: Mapping[str, str], *,
                   clock: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asks us to wait (never negative), or ``None`` when it does not say."""
    now = clock()
    delay: float | None = None
    if (value := headers.get("retry-after-ms")) is not None:
        millis = _number(value)
        delay = None if millis is None else millis / 1000
    if delay is None and (value := headers.get("retry-after")) is not None:
        delay = _number(value)
        if delay is None:
            delay = _http_date_delay(value, now)
    if delay is None and (value := headers.get("x-ratelimit-reset")) is not None:
        reset = _number(value)
        if reset is not None:
            delay = reset - now if reset > EPOCH_THRESHOLD else reset
    return None if delay is None else max(delay, 0.0)
