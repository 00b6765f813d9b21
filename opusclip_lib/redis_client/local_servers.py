"""Redis servers of our own on loopback, for tests, benchmarks and notebooks: a scratch server we
may pause or kill (never the shared one), a listener that never answers, and a real Redis
Cluster of 3 primaries and 3 replicas.

Tooling, not core: only tests, ``opusclip bench`` and notebooks import it.
``with LocalCluster() as cluster:`` starts six ``redis-server --cluster-enabled yes`` processes
in a temporary folder, joins them with ``redis-cli --cluster create ... --cluster-replicas 1``,
waits for ``cluster_state:ok`` and for every replica to be in sync, and on exit kills them and
deletes the folder. Ports are picked free: ``preferred_port`` and the five after it if they (and
their cluster-bus ports, +10000) are free, else the next free block.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Self

from opusclip_lib.redis_client._errors import RedisServiceError

NODES = 6  # 3 primaries, each with 1 replica
BUS_PORT_OFFSET = 10_000
START_TIMEOUT_S = 30.0


class ClusterStartError(RedisServiceError, RuntimeError):
    """A local server or cluster could not be started (``redis-server`` missing, no free
    ports...)."""


def redis_server_available() -> bool:
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


class ScratchRedis:
    """One ``redis-server`` on a free loopback port, no persistence: ``with ScratchRedis() as
    server:``. :meth:`pause` hangs it (``CLIENT PAUSE ... ALL``: connections are accepted,
    nothing is answered), :meth:`kill` crashes it, :meth:`restart` brings it back on the same
    port (empty: it persists nothing). ``port``: this one (say, where a fault was), else the
    first free one from ``preferred_port``."""

    def __init__(self, *, port: int | None = None, preferred_port: int = 7390) -> None:
        self.port = port if port is not None else 0  # 0: chosen on entering
        self._preferred_port = preferred_port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> Self:
        if not redis_server_available():
            raise ClusterStartError("redis-server and redis-cli are not on PATH")
        with claiming_ports():
            if not self.port:
                self.port = free_ports(self._preferred_port, 1)[0]
            self.restart()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill()

    def restart(self) -> None:
        self.kill()
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while _cli(self.port, "PING", check=False) != "PONG":
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise ClusterStartError(f"scratch redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def pause(self, *, for_s: float = 600.0) -> None:
        """Stop answering every client (Redis 7.0 queues even ``CLIENT UNPAUSE`` behind the
        pause, so it ends with :meth:`restart` or after ``for_s``)."""
        _cli(self.port, "CLIENT", "PAUSE", str(int(for_s * 1000)), "ALL")

    def kill(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


class HungListener:
    """A loopback server that accepts connections and never answers, until :meth:`close`."""

    def __init__(self) -> None:
        self.port = 0
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._held.append(writer)  # keep it open, read nothing, say nothing

        self._server = await asyncio.start_server(accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in self._held:
            writer.close()
        await self._server.wait_closed()
        self._server = None


class LocalCluster:
    """Six local Redis nodes forming one cluster. ``node_timeout_ms`` is the
    ``cluster-node-timeout``: how long a silent primary stays up before its replica takes over.
    ``require_full_coverage`` is ``cluster-require-full-coverage``: Redis's default (yes) makes
    every node refuse every command (``CLUSTERDOWN``) while any slot has no live primary, so
    one dead primary stops the whole cluster until its replica is promoted; no keeps the other
    shards serving."""

    def __init__(self, *, preferred_port: int = 7000, node_timeout_ms: int = 1000,
                 require_full_coverage: bool = True) -> None:
        self.preferred_port = preferred_port
        self.node_timeout_ms = node_timeout_ms
        self.require_full_coverage = require_full_coverage
        self.ports: list[int] = []
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._folder: Path | None = None

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<first port>``: one seed node; the client finds the rest."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def __enter__(self) -> Self:
        if not redis_server_available():
            raise ClusterStartError("redis-server and redis-cli are not on PATH")
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="opusclip-redis-cluster-"))
        # Torn down by stop(), or at the latest when this object is collected or Python exits
        # (a notebook kernel stopped mid-run): no orphaned redis-server, no leftover folder.
        self._tear_down = weakref.finalize(self, _tear_down, self._processes, self._folder)
        deadline = time.monotonic() + START_TIMEOUT_S
        with claiming_ports():
            self.ports = free_ports(self.preferred_port, NODES)
            for port in self.ports:
                self._spawn(port)
            for port in self.ports:
                self._wait(deadline, f"node {port} to answer PING (see its redis.log)",
                           partial(self._answers, port))
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
        if created.returncode != 0:
            raise ClusterStartError(f"redis-cli --cluster create failed: {created.stdout[-500:]}"
                                    f"{created.stderr[-500:]}")
        self.wait_until_ok(deadline - time.monotonic())

    def wait_until_ok(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until every live node reports ``cluster_state:ok`` and every replica is in sync."""
        deadline = time.monotonic() + timeout_s
        for port in self.live_ports():
            self._wait(deadline, f"node {port} to report cluster_state:ok",
                       partial(self._cluster_ok, port))
        for port in self.live_ports():
            if self.role(port) == "slave":
                self._wait(deadline, f"replica {port} to sync", partial(self._in_sync, port))

    def stop(self) -> None:
        if self._folder is not None:
            self._tear_down()  # runs once, however many times it is called
            self._folder = None

    # --- what the failover tests use -----------------------------------------------------

    def live_ports(self) -> list[int]:
        return [port for port, process in self._processes.items() if process.poll() is None]

    def primaries(self) -> list[int]:
        return [port for port in self.live_ports() if self.role(port) == "master"]

    def replica_of(self, primary: int) -> int:
        """The port of ``primary``'s replica."""
        for port in self.live_ports():
            if self.info(port, "INFO", "replication").get("master_port") == str(primary):
                return port
        raise LookupError(f"no replica follows {primary}")

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would: no goodbye to its clients or to the cluster."""
        process = self._processes[port]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def role(self, port: int) -> str:
        return self.info(port, "INFO", "replication").get("role", "?")

    def info(self, port: int, *command: str) -> dict[str, str]:
        """An ``INFO``-shaped reply (``key:value`` lines) as a dict."""
        text = self.cli(port, *command, check=False)
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def cli(self, port: int, *command: str, check: bool = True) -> str:
        return _cli(port, *command, check=check)

    # --- internals -----------------------------------------------------------------------

    def _spawn(self, port: int) -> None:
        assert self._folder is not None
        folder = self._folder / str(port)
        folder.mkdir()
        self._processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(self.node_timeout_ms),
             "--cluster-require-full-coverage", "yes" if self.require_full_coverage else "no",
             "--dir", str(folder), "--save", "", "--appendonly", "no",
             # a replica's first sync starts at once, not after the default 5 s wait for
             # more replicas to share the transfer
             "--repl-diskless-sync-delay", "0",
             "--logfile", str(folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _answers(self, port: int) -> bool:
        return self.cli(port, "PING", check=False) == "PONG"

    def _cluster_ok(self, port: int) -> bool:
        return self.info(port, "CLUSTER", "INFO").get("cluster_state") == "ok"

    def _in_sync(self, port: int) -> bool:
        return self.info(port, "INFO", "replication").get("master_link_status") == "up"

    def _wait(self, deadline: float, what: str, ready: Callable[[], bool]) -> None:
        while not ready():
            if time.monotonic() > deadline:
                raise ClusterStartError(f"timed out waiting for {what}")
            time.sleep(0.05)


def _tear_down(processes: dict[int, subprocess.Popen[bytes]], folder: Path) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
    processes.clear()
    shutil.rmtree(folder, ignore_errors=True)


def _cli(port: int, *command: str, check: bool = True) -> str:
    result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *command],
                            capture_output=True, text=True, timeout=10, check=False)
    if check and result.returncode != 0:
        raise ClusterStartError(f"redis-cli -p {port} {' '.join(command)}: {result.stderr}")
    return result.stdout.strip()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextmanager
def claiming_ports() -> Iterator[None]:
    """Held from choosing free ports until our servers answer on them. Without it two processes
    starting servers at once (test workers, a notebook beside the tests) both find the same
    ports free, and one of them then talks to the other's servers."""
    with open(Path(tempfile.gettempdir()) / "opusclip-redis-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def free_ports(preferred: int, count: int) -> list[int]:
    """``count`` consecutive free ports (and their bus ports), from ``preferred`` upwards."""
    for start in range(preferred, 10_000 + BUS_PORT_OFFSET - count, count * 2):
        block = list(range(start, start + count))
        if start + count + BUS_PORT_OFFSET < 65_536 and all(
                _port_free(port) and _port_free(port + BUS_PORT_OFFSET) for port in block):
            return block
    raise ClusterStartError("no block of free loopback ports for a local cluster")
