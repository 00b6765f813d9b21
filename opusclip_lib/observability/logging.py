"""Structured logs with the job's context: JSON lines for workers, readable lines for notebooks.

We use the standard library's :mod:`logging` plus a context variable, not structlog: every
module here (and httpx, asyncio, aiohttp) already logs through ``logging``, so one filter gives
all of their lines the job's fields, and a line below the level costs one integer comparison.
``opusclip bench observability`` prints both libraries' cost per line side by side.

Two rules hold on every line that goes through :func:`configure_logging`'s handler:

* **no secrets**: fields whose name says secret (``api_key``, ``authorization``, ``token``...)
  become ``REDACTED``, and so does any text shaped like a key (``sk-...``, ``AIza...``,
  ``Bearer ...``, ``key=...``) or equal to a key in the providers' environment variables;
* **no silent loss**: a message over :data:`MAX_MESSAGE_CHARS` is cut and says how much was cut.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from opusclip_lib.observability.context import FIELDS, current

REDACTED = "REDACTED"
MAX_MESSAGE_CHARS = 16_384
KEY_VARIABLES = ("YOUTUBE_API_KEY", "OPENAI_API_KEY", "STABILITY_API_KEY", "ELEVENLABS_API_KEY")
_SECRET_NAME = re.compile(r"(?i)(api[_-]?key|authorization|token|secret|password|passwd|"
                          r"cookie|xi-api-key|^key$)")
# Key shapes, one pass: a bare key becomes REDACTED; after a label, the label stays.
_KEY_SHAPES = re.compile(r"sk-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,}"
                         r"|(?P<label>(?i:bearer\s+|xi-api-key['\":\s]+)|[?&]key=)"
                         r"(?P<value>[^\s'\"&]+)")
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_HANDLER_NAME = "opusclip"


@functools.lru_cache(maxsize=1024)
def _secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (names repeat on every line)."""
    return _SECRET_NAME.search(name) is not None


def _secrets_in_environment() -> list[str]:
    return [value for name in KEY_VARIABLES if len(value := os.environ.get(name, "")) >= 8]


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every key-shaped run and every value in ``secrets`` replaced."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _KEY_SHAPES.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    return (match.group("label") or "") + REDACTED


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} ... [truncated: {len(text) - limit} more characters]"


class ContextFilter(logging.Filter):
    """Puts the job's fields (and the ``extra=`` ones) on the record, redacted and bounded."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets = _secrets_in_environment()

    def filter(self, record: logging.LogRecord) -> bool:
        fields = {**current(), **{
            name: value for name, value in vars(record).items()
            if name not in _RECORD_ATTRIBUTES and not name.startswith(("_", "opusclip_"))}}
        clean: dict[str, Any] = {}
        for name, value in fields.items():
            if _secret_name(name):
                clean[name] = REDACTED
            elif isinstance(value, str):
                clean[name] = truncate(redact_text(value, self.secrets))
            else:
                clean[name] = value
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        record.opusclip_message = truncate(redact_text(message, self.secrets))
        record.opusclip_fields = clean
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``event``, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line = {"ts": moment.isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name,
                "event": getattr(record, "opusclip_message", record.getMessage()),
                **getattr(record, "opusclip_fields", {})}
        return json.dumps(line, default=str, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    """``12:00:01 WARNING engine: message  job_id=3 stage=render`` for notebooks and terminals."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "opusclip_fields", {})
        ordered = [name for name in FIELDS if name in fields]
        ordered += sorted(name for name in fields if name not in FIELDS)
        tail = "  ".join(f"{name}={fields[name]}" for name in ordered)
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        text = getattr(record, "opusclip_message", record.getMessage())
        return f"{when} {record.levelname:<7} {record.name.rsplit('.', 1)[-1]}: {text}" + (
            f"  {tail}" if tail else "")


def configure_logging(*, json_lines: bool = False, level: int | str = logging.INFO,
                      stream: TextIO | None = None, logger: str = "") -> logging.Handler:
    """Send ``logger`` (default: the root) to ``stream`` as JSON lines or readable lines.

    Calling it again replaces the handler it installed before, never adds a second one.
    """
    target = logging.getLogger(logger)
    for old in [h for h in target.handlers if h.get_name() == _HANDLER_NAME]:
        target.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JSONFormatter() if json_lines else ReadableFormatter())
    target.addHandler(handler)
    target.setLevel(level)
    return handler
