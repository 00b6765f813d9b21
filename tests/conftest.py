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
from typing import Any
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
    once makes the policy answer with an error instead, which looptime expects.

    The workflow's own variables are dropped: a shell set up to run the workflow (as the README
    shows) would otherwise point every notebook and solution at one shared database and broker,
    where each resets the tables the others are using. Tests name their servers with the
    ``SERVERS`` variables above instead, and give each process its own database."""
    asyncio.set_event_loop(None)
    for name in ("OPUSCLIP_DATABASE_URL", "OPUSCLIP_BROKER_URL"):
        os.environ.pop(name, None)

# Under ``pytest -n N`` (``make test``): which tests must share a worker, and which go first.
NOTEBOOK_CELLS = "notebooks/"
"""nbval's cells: a notebook's cells share one kernel, and every notebook uses work/opusclip.db,
so all of them run on one worker, one after another, in reading order."""
OWN_PROCESS_RUNS = ("tests/test_solutions.py", "tests/test_notebooks_on_servers.py")
"""Each test runs a notebook or a solution in a process, database and folder of its own: spread
one by one, the longest (the integrated 3x lessons) first."""


def _scope(nodeid: str) -> str:
    """The unit of work a worker takes whole: the notebooks, one own-process run, or a module
    (which keeps module- and session-scoped fixtures to one worker)."""
    path = nodeid.split("::", 1)[0]
    if path.startswith(NOTEBOOK_CELLS):
        return NOTEBOOK_CELLS
    return nodeid if path in OWN_PROCESS_RUNS else path


def _rank(item: pytest.Item) -> tuple[int, int]:
    path = item.nodeid.split("::", 1)[0]
    if path.startswith(NOTEBOOK_CELLS):
        return (0, 0)  # the longest chain starts first
    if path in OWN_PROCESS_RUNS:  # ids start with the lesson's number: "[34_performance_...]"
        lesson = item.nodeid.rsplit("[", 1)[-1][:2]
        return (1, -int(lesson) if lesson.isdigit() else 0)
    return (2, 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker, order the collection longest-first (the scheduler below hands out
    units in this order); a plain run keeps pytest's order."""
    if hasattr(config, "workerinput"):
        items.sort(key=_rank)  # stable: each group keeps its own order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``-n N`` with the default ``--dist load``: whole units as :func:`_scope` draws them, in
    collection order (not xdist's largest-unit-first, which would start the single long runs
    last)."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ScopeScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    config.option.loadscopereorder = False
    return ScopeScheduling(config, log)


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
