"""Strings that satisfy a JSON Schema ``format`` or ``pattern``, as Structured Outputs promise.

OpenAI documents these string formats as supported in strict mode: ``date-time``, ``time``,
``date``, ``duration``, ``email``, ``hostname``, ``ipv4``, ``ipv6``, ``uuid`` (and ``uri`` is
common); a ``pattern`` is a regular expression the whole string must match. Values are drawn
from the filler's seeded RNG, so the same request gives the same answer; a pattern goes through
``rstr`` (which accepts that RNG), not a hand-written regex walker.
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import rstr

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
MINUTES_A_YEAR = 525_600


def _moment(rng: random.Random) -> datetime:
    return EPOCH + timedelta(minutes=rng.randrange(MINUTES_A_YEAR), seconds=rng.randrange(60))


def _duration(rng: random.Random) -> str:
    minutes, seconds = rng.randrange(0, 90), rng.randrange(1, 60)
    return f"PT{minutes}M{seconds}S" if minutes else f"PT{seconds}S"


def _hostname(rng: random.Random, words: Sequence[str]) -> str:
    label = "".join(ch for ch in rng.choice(words).lower() if ch.isalnum())[:20] or "clip"
    return f"{label}-{rng.randrange(100)}.example.com"


FORMATS: dict[str, Callable[[random.Random, Sequence[str]], str]] = {
    "date-time": lambda rng, words: _moment(rng).isoformat().replace("+00:00", "Z"),
    "date": lambda rng, words: _moment(rng).date().isoformat(),
    "time": lambda rng, words: _moment(rng).strftime("%H:%M:%S") + "Z",
    "duration": lambda rng, words: _duration(rng),
    "email": lambda rng, words: f"{_hostname(rng, words).split('.')[0]}@example.com",
    "hostname": _hostname,
    "ipv4": lambda rng, words: str(ipaddress.IPv4Address(
        (198 << 24) | (51 << 16) | (100 << 8) | rng.randrange(1, 255))),  # TEST-NET-2
    "ipv6": lambda rng, words: str(ipaddress.IPv6Address(
        (0x20010DB8 << 96) | rng.getrandbits(64))),  # the documentation prefix 2001:db8::/32
    "uuid": lambda rng, words: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "uri": lambda rng, words: f"https://example.com/{rng.choice(words)}",
    "url": lambda rng, words: f"https://example.com/{rng.choice(words)}",
}


def formatted(fmt: str, rng: random.Random, words: Sequence[str]) -> str | None:
    """A value in ``fmt``, or ``None`` for a format not listed (the caller writes prose)."""
    make = FORMATS.get(fmt)
    return None if make is None else make(rng, words)


def matching(pattern: str, rng: random.Random) -> str:
    """A string the regular expression ``pattern`` matches (searched, as JSON Schema does)."""
    return rstr.Rstr(rng).xeger(pattern)
