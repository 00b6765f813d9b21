"""Workers as separate hosts: each in its own network namespace (``ip netns`` with a veth pair),
reaching PostgreSQL and the Redis broker only over its link, with its own work folder, and
sharing only the database, the broker and the artifact store.

The servers listen on loopback only, so on the host side of each link a forwarding proxy
(:class:`tests.faults.Proxy`) listens on the link's address: what a host reaches is the link,
and the proxy counts the connections that came over it.

Needs iproute2's ``ip`` and the capabilities ``ip netns add`` uses (CAP_NET_ADMIN for the
links, CAP_SYS_ADMIN for the namespace's bind mount): root in this project's containers. Without
them the test skips with the reason, under ``CI=true`` too. CI runs on the same kind of machine
as this one, so when they are there and ``ip netns add`` still fails, CI fails instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from opusclip_lib.db import Database, jobs
from opusclip_lib.distributed.brokers import BrokerSettings
from tests.faults import Proxy

pytestmark = pytest.mark.slow

HOSTS = 2
VIDEOS = ["opusSample1", "R-j_8U_m7aS", "y4SXvE9rwLb"]
WAIT_S = 180.0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass(frozen=True)
class Link:
    """A namespace and the two ends of its veth pair."""

    namespace: str
    host_address: str  # the host's end, where the proxies listen
    address: str  # the namespace's end


CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


def _missing() -> str | None:
    """What this process lacks to make namespaces, or ``None``."""
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    status = Path("/proc/self/status").read_text()
    effective = int(next(line.split()[1] for line in status.splitlines()
                         if line.startswith("CapEff:")), 16)
    lacking = [name for name, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN),
                                      ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
               if not effective >> bit & 1]
    return f"this process lacks {', '.join(lacking)}" if lacking else None


@contextmanager
def namespaces(count: int) -> Iterator[list[Link]]:
    """``count`` network namespaces, each linked to this host by a veth pair; removed after."""
    if (missing := _missing()) is not None:
        pytest.skip(f"network namespaces cannot be made here: {missing}")
    tag = secrets.token_hex(2)
    subnet = 200 + secrets.randbelow(50)
    links: list[Link] = []
    try:
        for index in range(count):
            link = Link(f"h_art_{tag}_{index}", f"10.{subnet}.{index}.1",
                        f"10.{subnet}.{index}.2")
            outside, inside = f"va{tag}{index}", f"vb{tag}{index}"  # IFNAMSIZ: 15 characters
            _ip("netns", "add", link.namespace)
            links.append(link)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", link.namespace)
            _ip("addr", "add", f"{link.host_address}/24", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", link.namespace, "addr", "add", f"{link.address}/24", "dev", inside)
            _ip("-n", link.namespace, "link", "set", inside, "up")
            _ip("-n", link.namespace, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as error:
        for link in links:
            subprocess.run(["ip", "netns", "del", link.namespace], check=False)
        reason = f"ip {' '.join(error.cmd[1:])} failed: {error.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true, ip and the capabilities are here, yet {reason}",
                        pytrace=False)
        pytest.skip(reason)
    try:
        yield links
    finally:
        for link in links:  # deleting the namespace deletes its veth pair too
            subprocess.run(["ip", "netns", "del", link.namespace], check=False)


class CountingProxy(Proxy):
    """A :class:`Proxy` that listens on a link's address and counts what came over it."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        super().__init__(parts.hostname or "127.0.0.1", parts.port or 0)
        self.accepted = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await super()._accept(reader, writer)

    async def listen_on(self, address: str) -> str:
        """Listen on ``address`` (any port); ``address:port``."""
        self._server = await asyncio.start_server(self._accept, address, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"{address}:{self.port}"


def through(url: str, netloc: str) -> str:
    """``url`` with its host and port replaced by ``netloc`` (credentials kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{netloc}" if credentials else netloc))








@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
async def test_workers_on_separate_hosts_share_only_database_broker_and_store(
        db: Database, database_url: str, broker: BrokerSettings, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    with namespaces(HOSTS) as links:
        proxies: list[CountingProxy] = []
        workers: list[asyncio.subprocess.Process] = []
        try:
            for index, link in enumerate(links):
                to_db, to_broker = CountingProxy(database_url), CountingProxy(broker.url)
                proxies += [to_db, to_broker]
                env = {**os.environ,
                       "OPUSCLIP_DATABASE_URL": through(database_url,
                                                        await to_db.listen_on(link.host_address)),
                       "OPUSCLIP_BROKER_URL": through(broker.url,
                                                      await to_broker.listen_on(link.host_address)),
                       "OPUSCLIP_BROKER_PREFIX": broker.prefix}
                log = (tmp_path / f"host{index}.log").open("wb")
                workers.append(await asyncio.create_subprocess_exec(
                    "ip", "netns", "exec", link.namespace, sys.executable, "-m", "opusclip_lib",
                    "worker", "--processes", "1", "--work-dir", str(tmp_path / f"host{index}"),
                    "--artifacts", str(shared), "--clips", "1", "--max-clip-seconds", "1",
                    "--no-captions", "--heartbeat", "0.2", "--stale-after", "3",
                    "--retry-backoff", "0.05", "--sweep", "0.5", env=env, stdout=log,
                    stderr=log))
                log.close()
            env = {**os.environ, "OPUSCLIP_DATABASE_URL": database_url,
                   "OPUSCLIP_BROKER_URL": broker.url, "OPUSCLIP_BROKER_PREFIX": broker.prefix}
            enqueue = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "opusclip_lib", "enqueue", *VIDEOS, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            _, err = await enqueue.communicate()
            assert enqueue.returncode == 0, err.decode()[-3000:]
            async with asyncio.timeout(WAIT_S):
                while await jobs.queue_counts(db) != {"completed": len(VIDEOS)}:
                    for index, worker in enumerate(workers):
                        assert worker.returncode is None, (
                            tmp_path / f"host{index}.log").read_text()[-3000:]
                    await asyncio.sleep(0.1)
        finally:
            for worker in workers:
                if worker.returncode is None:
                    worker.send_signal(signal.SIGTERM)
            for worker in workers:
                async with asyncio.timeout(WAIT_S):
                    await worker.wait()
            for proxy in proxies:
                await proxy.stop_listening()
                await proxy.drop_connections()
    assert [worker.returncode for worker in workers] == [0] * HOSTS
    assert all(proxy.accepted > 0 for proxy in proxies), "each host reached both over its link"
    for row in await db.fetch("SELECT * FROM clips"):
        for column in ("clip_path", "thumbnail_path", "voiceover_path"):
            path = Path(row[column])
            assert path.is_relative_to(shared), (column, path)
            assert path.is_file(), (column, path)  # noqa: ASYNC240 - a stat
