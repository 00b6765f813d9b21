"""Server-sent events (the WHATWG ``text/event-stream`` format), decoded as bytes arrive.

OpenAI streams chat completions as ``data: {json}`` events ended by a blank line, and a final
``data: [DONE]``. Network chunks do not follow event boundaries: one chunk may hold half a line
or three events, so the decoder keeps what it has not finished and hands out whole events only.

Hand-written because the format is the lesson (and ``httpx-sse`` only reads httpx responses,
while the default transport here is aiohttp). Stricter than the standard in one way: a line
that is neither a comment nor one of the four fields is an error, not silently skipped, so a
broken proxy or a wrong endpoint fails at once instead of waiting for a ``[DONE]`` that never
comes. A line longer than ``max_line_bytes`` is an error too, so a server that never sends a
newline cannot fill the memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from opusclip_lib.errors import OpusClipError

FIELDS = frozenset({"data", "event", "id", "retry"})
DEFAULT_MAX_LINE_BYTES = 1 << 20


class SSEError(OpusClipError, ValueError):
    """The bytes are not a valid event stream; says which line."""


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry_ms: int | None = None


class SSEDecoder:
    """``decoder.feed(chunk)`` returns the events the chunk completed (often none, or several)."""

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self.line_number = 0
        self._pending = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        events = []
        lines = (self._pending + chunk).splitlines(keepends=True)  # bytes: \n, \r\n or \r only
        self._pending = b""
        # A last line without its end is kept; so is a lone \r, which may be half of \r\n.
        if lines and (not lines[-1].endswith((b"\n", b"\r")) or lines[-1].endswith(b"\r")):
            self._pending = lines.pop()
            if len(self._pending) > self.max_line_bytes:
                raise SSEError(f"line {self.line_number + 1} is longer than "
                               f"{self.max_line_bytes} bytes without an end")
        for raw in lines:
            event = self._line(raw.rstrip(b"\r\n"))
            if event is not None:
                events.append(event)
        return events

    def end(self) -> list[ServerSentEvent]:
        """The stream ended: a last line ended by a lone ``\r`` is complete after all (an
        unfinished event is dropped, as the standard says)."""
        if not self._pending.endswith(b"\r"):
            return []
        line, self._pending = self._pending, b""
        event = self._line(line.rstrip(b"\r"))
        return [] if event is None else [event]

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        self.line_number += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SSEError(f"line {self.line_number} is not UTF-8") from None
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (servers send them to keep idle connections open)
        name, colon, value = line.partition(":")
        if name not in FIELDS:
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise SSEError(f"line {self.line_number} is not an event field: {shown!r}")
        value = value.removeprefix(" ") if colon else ""
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._id,
                                self._retry)
        self._data, self._event = [], ""
        return event
