"""A server in a child process on a loopback port, for the benchmarks and the browser tests:
start it, wait until it accepts connections, stop it on exit.

Tooling: the benchmarks serve the sandbox this way, so its CPU is not the measured client's,
and the dashboard's tests stop and start it to check that browsers reconnect.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def free_port() -> int:
    """A loopback port nothing listens on now (the OS picks it)."""
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
def listening(command: Sequence[str], port: int, *, name: str,
              start_timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``command`` (a server told to listen on ``port``); yields ``http://127.0.0.1:PORT``
    once it accepts connections, and stops it on exit (SIGTERM, which lets uvicorn stop
    gracefully, then SIGKILL after 10 s). ``name`` says which server in the errors."""
    server = subprocess.Popen(list(command), stdout=subprocess.DEVNULL)
    try:
        give_up = time.monotonic() + start_timeout_s
        while not _answers(port):
            if server.poll() is not None:
                raise RuntimeError(f"the {name} exited with status {server.returncode} "
                                   "during start-up")
            if time.monotonic() > give_up:
                raise RuntimeError(f"the {name} did not listen on port {port} within "
                                   f"{start_timeout_s:g} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
