"""Recorded HTTP (vcrpy): how every API example runs offline, and how to record it again.

``OPUSCLIP_RECORD`` picks the mode:

* unset or ``none``: replay only. A request with no recording fails with :class:`CassetteMissError`,
  whose message says how to record it.
* ``sandbox``: record against the project's in-process sandbox (``make cassettes``).
* ``live``: record against the real services, with keys from the environment.

``python -m opusclip_lib.cassettes record`` re-records every shipped cassette by running the code
that uses it (see :mod:`opusclip_lib.record_cassettes`); :func:`opusclip_lib.offline.api_clients`
is how notebooks and tests open the four clients on a cassette.

Secrets never reach a cassette: auth headers, cookies, organisation/project headers and the
YouTube ``key=`` parameter are replaced by ``REDACTED`` before anything is written, and the keys
in use are also searched for (and replaced) everywhere else: URLs, bodies, error messages.

Requests match on method, URL and a *canonical* body: JSON compared as data (key order and
spacing ignored), multipart forms as their parts in order (name, file name, content type, and the
value, or the SHA-256 and size of a file: the random boundary and the line layout drop out), and
"no body" equal to an empty one (aiohttp reports ``None`` where httpx reports ``b""``), so a
cassette recorded through one transport replays through any other.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

import vcr
from vcr.cassette import Cassette
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request

from opusclip_lib import config
from opusclip_lib.errors import OpusClipError

RecordMode = Literal["none", "sandbox", "live"]
RECORD_VARIABLE = "OPUSCLIP_RECORD"
REDACTED = "REDACTED"
SECRET_HEADERS = (
    "authorization", "proxy-authorization", "xi-api-key", "x-goog-api-key", "x-api-key",
    "cookie", "set-cookie", "openai-organization", "openai-project",
)
SECRET_QUERY_PARAMETERS = ("key",)
MIN_SECRET_LENGTH = 8
"""Shorter "keys" are not searched for in bodies: they could match bytes of an image by chance."""
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "canonical_body")
KEY_VARIABLES = ("YOUTUBE_API_KEY", "OPENAI_API_KEY", "STABILITY_API_KEY", "ELEVENLABS_API_KEY")
_BOUNDARY = re.compile(r"boundary=\"?([^\s;\"]+)")
_DISPOSITION_PARAMETER = re.compile(r';\s*(name|filename)="((?:[^"\\]|\\.)*)"')


class CassetteMissError(OpusClipError, RuntimeError):
    """A request had no recording; the message names it and says how to record."""


def record_mode() -> RecordMode:
    """``OPUSCLIP_RECORD``: ``none`` (replay, the default), ``sandbox`` or ``live``."""
    mode = (os.environ.get(RECORD_VARIABLE) or "none").lower()
    if mode not in get_args(RecordMode):
        raise ValueError(f"{RECORD_VARIABLE} must be none, sandbox or live, not {mode!r}")
    return mode  # type: ignore[return-value]


def cassette_path(folder: str, name: str) -> Path:
    """``cassettes/<folder>/<name>.yaml`` (under ``OPUSCLIP_CASSETTE_DIR`` if set)."""
    return config.cassette_dir() / folder / f"{name}.yaml"


def how_to_record(folder: str) -> str:
    """The commands that record ``folder`` again, for error messages and notebooks."""
    command = f".venv/bin/python -m opusclip_lib.cassettes record {folder}"
    return (f"Record it again against the local sandbox with `OPUSCLIP_RECORD=sandbox {command}` "
            f"(`make cassettes` records every folder), or against the live APIs with "
            f"`OPUSCLIP_RECORD=live {command}` (keys from {', '.join(KEY_VARIABLES)}).")


# --- matching --------------------------------------------------------------------------------


def canonical_body(request: Request) -> bytes:
    """The request body without its accidental parts: JSON key order and spacing, multipart
    boundaries, and the difference between "no body" and an empty one."""
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    content_type = request.headers.get("content-type") or ""
    if "json" in content_type:
        try:
            return json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False).encode()
        except ValueError:
            return body
    boundary = _BOUNDARY.search(content_type)
    if content_type.startswith("multipart/") and boundary:
        return canonical_form(bytes(body), boundary.group(1).encode())
    return bytes(body)


def canonical_form(body: bytes, boundary: bytes) -> bytes:
    """A multipart body as JSON lines, one per part in order: a field's name and value, or a
    file's name, content type, size and SHA-256 (megabytes of audio compare as 64 hex digits).
    """
    parts = []
    for raw in body.split(b"--" + boundary)[1:]:
        if raw.startswith(b"--"):  # the closing delimiter
            break
        head, _, content = raw.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = dict(line.split(":", 1) for line in head.decode("utf-8", "replace").split(
            "\r\n") if ":" in line)
        headers = {name.strip().lower(): value.strip() for name, value in headers.items()}
        part = dict(_DISPOSITION_PARAMETER.findall(headers.get("content-disposition", "")))
        if "filename" in part:
            part |= {"content_type": headers.get("content-type", ""), "bytes": str(len(content)),
                     "sha256": hashlib.sha256(content).hexdigest()}
        else:
            part["value"] = content.decode("utf-8", "replace")
        parts.append(json.dumps(part, sort_keys=True, ensure_ascii=False))
    return "\n".join(parts).encode()


def _same_canonical_body(incoming: Request, recorded: Request) -> None:
    """A vcrpy matcher: raises ``AssertionError`` saying where the bodies part ways."""
    a, b = canonical_body(incoming), canonical_body(recorded)
    if a != b:
        at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                  min(len(a), len(b)))
        raise AssertionError(f"bodies differ from byte {at} ({len(a)} bytes here, {len(b)} "
                             f"recorded): ...{a[max(0, at - 30):at + 30]!r}...")


# --- filtering -------------------------------------------------------------------------------


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Response headers that identify the account (cookies, organisation, project)."""
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            headers[name] = [REDACTED]
    return response


def _hidden(secrets: Iterable[str | None]) -> list[tuple[str, str]]:
    return [(REDACTED, secret) for secret in dict.fromkeys(secrets)
            if secret and len(secret) >= MIN_SECRET_LENGTH and secret != REDACTED]


def vcr_for(mode: RecordMode, *, secrets: Iterable[str | None] = ()) -> vcr.VCR:
    """A VCR for ``mode``: replay only (``none``), or re-record whole cassettes.

    ``secrets`` (the keys in use) are replaced by ``REDACTED`` wherever they appear when a
    cassette is saved, on top of the header and query filters.
    """
    instance = vcr.VCR(
        record_mode="none" if mode == "none" else "all",
        # A re-recorded cassette holds this run's requests only. Never when replaying: vcrpy
        # would then rewrite the cassette without the interactions a partial run left unplayed.
        drop_unused_requests=mode != "none",
        filter_headers=[(name, REDACTED) for name in SECRET_HEADERS],
        filter_query_parameters=[(name, REDACTED) for name in SECRET_QUERY_PARAMETERS],
        filter_sensitive_data=_hidden(secrets) if mode != "none" else (),
        before_record_response=_scrub_response,
        decode_compressed_response=True,  # readable bodies; httpx never sees the encoding
        match_on=MATCH_ON,
    )
    instance.register_matcher("canonical_body", _same_canonical_body)
    return instance


# --- use -------------------------------------------------------------------------------------


@contextmanager
def use_cassette(folder: str, name: str, *, mode: RecordMode | None = None,
                 secrets: Iterable[str | None] = ()) -> Iterator[Cassette]:
    """Replay (or record) ``cassettes/<folder>/<name>.yaml`` around a block of HTTP calls.

    A request the cassette cannot answer surfaces as :class:`CassetteMissError` when it leaves the
    block, also from inside a ``TaskGroup``'s ``ExceptionGroup``.
    """
    mode = mode or record_mode()
    path = cassette_path(folder, name)
    try:
        with vcr_for(mode, secrets=secrets).use_cassette(path) as cassette:
            yield cassette
    except Exception as exc:
        miss = _find_miss(exc)
        if miss is None:
            raise
        raise CassetteMissError(_describe_miss(miss, folder, path)) from exc


def _find_miss(exc: BaseException) -> CannotOverwriteExistingCassetteException | None:
    if isinstance(exc, CannotOverwriteExistingCassetteException):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next(filter(None, map(_find_miss, exc.exceptions)), None)
    return None


def _describe_miss(miss: CannotOverwriteExistingCassetteException, folder: str,
                   path: Path) -> str:
    request = miss.cassette.filter_request(miss.failed_request) or miss.failed_request
    shown = path.relative_to(config.PROJECT_ROOT) if path.is_relative_to(config.PROJECT_ROOT) \
        else path
    lines = [f"No recorded answer for {request.method} {request.uri}"]
    if miss.reason == "cassette_not_found":
        lines.append(f"  {shown} does not exist.")
    elif miss.reason == "already_played":
        lines.append(f"  {shown} holds this request fewer times than the code made it.")
    else:
        lines.append(f"  {shown} has no recording of it.")
        if miss.similar_requests:
            closest, _, failed = miss.similar_requests[0]
            lines.append(f"  closest recorded: {closest.method} {closest.uri}")
            lines += [f"  differs in {name}: {(message or '').strip()}" for name, message in failed]
    lines.append(f"The code makes a request the recording does not hold. {how_to_record(folder)}")
    return "\n".join(lines)

