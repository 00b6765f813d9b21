"""The dashboard in a process of its own, as it runs in production: for the browser test and
``opusclip bench dashboard``, which stop and start it to check that browsers reconnect."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def dashboard_process(database_url: str, port: int, *, options: Sequence[str] = (),
                      start_timeout_s: float = 60.0) -> Iterator[str]:
    """``python -m opusclip_lib.dashboard`` on ``port``; yields its URL once it accepts
    connections, and stops it on exit (SIGTERM: uvicorn's graceful stop, then SIGKILL)."""
    server = subprocess.Popen([sys.executable, "-m", "opusclip_lib.dashboard", "--database",
                               database_url, "--port", str(port), *options])
    try:
        give_up = time.monotonic() + start_timeout_s
        while not _answers(port):
            if server.poll() is not None:
                raise RuntimeError(f"the dashboard exited with status {server.returncode} "
                                   "during start-up")
            if time.monotonic() > give_up:
                raise RuntimeError(f"the dashboard did not listen on port {port} within "
                                   f"{start_timeout_s:g} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
