"""The dashboard in a process of its own, as it runs in production: for the browser test and
``opusclip bench dashboard``, which stop and start it to check that browsers reconnect."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opusclip_lib.local_server import free_port, listening

__all__ = ["dashboard_process", "free_port"]


@contextmanager
def dashboard_process(database_url: str, port: int, *, options: Sequence[str] = (),
                      start_timeout_s: float = 60.0) -> Iterator[str]:
    """``python -m opusclip_lib.dashboard`` on ``port``; yields its URL once it accepts
    connections, and stops it on exit (SIGTERM: uvicorn's graceful stop, then SIGKILL)."""
    command = [sys.executable, "-m", "opusclip_lib.dashboard", "--database", database_url,
               "--port", str(port), *options]
    with listening(command, port, name="dashboard", start_timeout_s=start_timeout_s) as root:
        yield f"{root}/"
