"""Shared fixtures: the real servers the tests talk to.

A server comes from an environment variable (``OPUSCLIP_POSTGRES_URL``, ``OPUSCLIP_MYSQL_URL``,
``OPUSCLIP_REDIS_URL``, ``OPUSCLIP_RABBITMQ_URL``, ``OPUSCLIP_NATS_URL``; ``.ci/run`` sets
them all). Missing or unreachable, the test skips with
the reason on a learner's machine, and fails under ``CI=true``: CI must never go green by
skipping the very round trips it exists to prove.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from opusclip_lib.db import Database, Job, jobs
from opusclip_lib.redis_client import AnyRedis, delete_matching, open_redis

pytest_plugins = (  # fixtures: db, db_url, scratch_namespaces; config, sandbox, served; Redis's
    "opusclip_lib.testing.db",
    "opusclip_lib.testing.sandbox",
    "opusclip_lib.testing.redis",
    "tests.api_specs",  # the offline API specs, for the modules that check the sandbox by them
)

SERVERS = {
    "postgres": "OPUSCLIP_POSTGRES_URL",
    "mysql": "OPUSCLIP_MYSQL_URL",
    "redis": "OPUSCLIP_REDIS_URL",
    "rabbitmq": "OPUSCLIP_RABBITMQ_URL",
    "nats": "OPUSCLIP_NATS_URL",
}


def pytest_configure(config: pytest.Config) -> None:
    """looptime (the fake loop clock) asks the policy for the current loop before every test,
    sync ones too; on Python 3.11 that quietly creates a loop nobody closes. Saying "no loop"
    once makes the policy answer with an error instead, which looptime expects."""
    asyncio.set_event_loop(None)

def _unavailable(variable: str) -> str | None:
    """Why the server in ``variable`` cannot be used, or ``None`` if a TCP connect succeeds."""
    url = os.environ.get(variable)
    if not url:
        return f"{variable} is not set (see README, 'Databases')"
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            return None
    except OSError as exc:
        return f"{variable}={url} is unreachable: {exc}"


def require_server(kind: str) -> str:
    """The URL of server ``kind``; skip (or fail under CI) when it cannot be reached."""
    variable = SERVERS[kind]
    reason = _unavailable(variable)
    if reason is None:
        return os.environ[variable]
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def postgres_url() -> str:
    return require_server("postgres")


@pytest.fixture
def mysql_url() -> str:
    return require_server("mysql")


@pytest.fixture
def redis_url() -> str:
    return require_server("redis")


@pytest.fixture(params=["redis", "rabbitmq", "nats"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each of the three brokers the distributed workers speak to."""
    return require_server(request.param)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[tuple[AnyRedis, str]]:
    """A client (one server or a cluster, as the URL says) and a key prefix unique to this test;
    the test's keys are deleted afterwards."""
    prefix = f"opusclip:test:{uuid.uuid4().hex}:"
    async with open_redis(redis_url) as client:
        yield client, prefix
        await delete_matching(client, prefix + "*")


async def overdue_job(db: Database, kind: str, overdue_s: float) -> Job:
    """A pending job that fell due ``overdue_s`` ago. ``enqueue`` refuses negative delays, so the
    test moves ``run_after`` back itself."""
    job = await jobs.enqueue(db, kind)
    await db.execute(f"UPDATE processing_jobs SET run_after = {db.backend.now_plus()} WHERE id = ?",
                     (-float(overdue_s), job.id))
    return job
