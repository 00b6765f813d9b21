"""Every Redis timeout in one place, with its default.

A cache must never make a call slower than having no cache: a Redis hit costs well under a
millisecond on a LAN, so waiting longer than a fraction of a second only means Redis is in
trouble. The defaults bound a call's worst case to ``command_s``, and once Redis has failed, the
next ``down_for_s`` seconds of calls skip it without waiting at all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisTimeouts:
    """``connect_s``: TCP connect; ``socket_s``: one read or write on the socket;
    ``command_s``: one whole cache operation, redirects and retries included (enforced with
    ``asyncio.timeout``, so it holds on any client); ``down_for_s``: after a failure, how long
    calls skip Redis before one of them tries it again."""

    connect_s: float = 0.25
    socket_s: float = 0.25
    command_s: float = 0.5
    down_for_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("connect_s", "socket_s", "command_s", "down_for_s"):
            value = getattr(self, name)
            if not 0 <= value < float("inf") or (value == 0 and name != "down_for_s"):
                raise ValueError(f"RedisTimeouts.{name} must be a finite number of seconds above "
                                 f"0 (down_for_s may be 0: no back-off), not {value!r}")
