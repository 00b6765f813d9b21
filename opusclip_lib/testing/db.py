"""Pytest fixtures for database tests: ``db``, ``db_url`` and ``scratch_namespaces``.

``db_url`` is parametrized over a SQLite file, PostgreSQL and MySQL. The servers come from the
``postgres_url``/``mysql_url`` fixtures in ``tests/conftest.py`` (skip locally, fail under CI),
and each gets one private scratch schema/database per test session, dropped at the end, so
parallel test runs on a shared server never see each other's rows.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from opusclip_lib.db.database import Database, connect
from opusclip_lib.db.maintenance import create_scratch, drop_scratch
from opusclip_lib.db.schema import clear


@pytest.fixture(scope="session")
def scratch_namespaces() -> Iterator[Callable[[str], str]]:
    """``get(server_url) -> scratch_url``, created on first use, dropped at session end.

    Runs its own event loop in a helper thread: the tests' loops come and go per test, and a
    session-long setup must not borrow (or replace) any of them.
    """
    created: dict[str, tuple[str, str]] = {}
    with ThreadPoolExecutor(max_workers=1) as runner:

        def get(server_url: str) -> str:
            if server_url not in created:
                name = f"opusclip_test_{secrets.token_hex(4)}"
                scratch = runner.submit(asyncio.run, create_scratch(server_url, name)).result()
                created[server_url] = (scratch, name)
            return created[server_url][0]

        yield get
        for server_url, (_, name) in created.items():
            runner.submit(asyncio.run, drop_scratch(server_url, name)).result()


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path,
           scratch_namespaces: Callable[[str], str]) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    return scratch_namespaces(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated, emptied database with a small pool."""
    async with connect(db_url, min_size=1, max_size=4) as database:
        await clear(database)
        yield database
