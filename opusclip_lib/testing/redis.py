"""Pytest fixtures for Redis faults and clusters.

Every fault is our own: a closed port, a listener that accepts and never answers, a scratch
``redis-server`` we pause or kill, a local cluster we crash a primary of. The shared Redis is
never paused, flushed or stopped. Without ``redis-server`` on PATH the tests that need one skip
with the reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from opusclip_lib.local_server import free_port
from opusclip_lib.redis_client.local_servers import (
    ClusterStartError,
    HungListener,
    LocalCluster,
    ScratchRedis,
    redis_server_available,
)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def redis_server_binary() -> None:
    """Skip (fail under CI) unless ``redis-server`` and ``redis-cli`` are on PATH."""
    if not redis_server_available():
        _unavailable("redis-server and redis-cli are not on PATH")


@pytest.fixture
def scratch_redis() -> Iterator[ScratchRedis]:
    """A private ``redis-server`` this test may pause, kill and restart."""
    try:
        with ScratchRedis() as server:
            yield server
    except ClusterStartError as exc:
        _unavailable(f"no scratch Redis: {exc}")


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once. The OS picks it, so
    test workers running side by side do not pick the same one."""
    return free_port()


@pytest.fixture
async def hung_listener() -> AsyncIterator[HungListener]:
    listener = HungListener()
    await listener.start()
    try:
        yield listener
    finally:
        await listener.close()


def start_cluster(**options: object) -> LocalCluster:
    """A started :class:`LocalCluster` (stop it with ``cluster.stop()``), or skip/fail."""
    cluster = LocalCluster(**options)  # type: ignore[arg-type]
    try:
        cluster.__enter__()
    except ClusterStartError as exc:
        _unavailable(f"no local Redis Cluster: {exc}")
    return cluster


def _running_cluster() -> Iterator[LocalCluster]:
    """The body of the two cluster fixtures, which differ only in scope."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """One local cluster (3 primaries, 3 replicas) for the session's non-destructive tests."""
    yield from _running_cluster()


@pytest.fixture
def fresh_cluster() -> Iterator[LocalCluster]:
    """A cluster of this test's own, for tests that crash its nodes."""
    yield from _running_cluster()
