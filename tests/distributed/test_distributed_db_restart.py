"""Workers ride out a restart of the database server: they reconnect, and no job is lost.

The server is the test's own (tests/private_postgres.py): restarting the shared one would take
it from every other test. Session kills on the shared server are covered in
test_distributed_worker.py.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from opusclip_lib.db import connect
from tests.distributed.test_distributed_worker import (
    VIDEOS,
    _opusclip,
    _start_workers,
    _stop,
    _wait_for,
)
from tests.private_postgres import PrivatePostgres, private_postgres

pytestmark = pytest.mark.slow


def _env(server: PrivatePostgres) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "OPUSCLIP_BROKER_URL"}
    return env | {"OPUSCLIP_DATABASE_URL": server.url}


async def _all_complete(server: PrivatePostgres, workers: asyncio.subprocess.Process) -> None:
    """Wait until every job completed, then check that none ever failed on the way."""
    async with connect(server.url, min_size=1, max_size=1) as db:
        await _wait_for(db, lambda counts: counts == {"completed": len(VIDEOS)}, workers)
        failed = await db.fetchval("SELECT count(*) FROM job_events WHERE to_status = 'failed'")
    assert failed == 0


async def test_running_workers_reconnect_after_a_database_restart_and_lose_no_job(
        tmp_path: Path) -> None:
    async with private_postgres() as server:
        await _opusclip(_env(server), "enqueue", *VIDEOS)
        workers = await _start_workers(_env(server), tmp_path / "work",
                                       "--latency", "stability=1000")
        try:
            async with connect(server.url, min_size=1, max_size=1) as db:
                await _wait_for(db, lambda counts: counts.get("pending", 0) < len(VIDEOS),
                                workers)
            await server.stop()
            await server.start()
            await _all_complete(server, workers)
        finally:
            code, _ = await _stop(workers)
    assert code == 0


async def test_a_worker_started_while_the_database_is_down_waits_for_it(
        tmp_path: Path) -> None:
    async with private_postgres() as server:
        await _opusclip(_env(server), "enqueue", *VIDEOS)
        await server.stop()
        workers = await _start_workers(_env(server), tmp_path / "work")
        try:
            assert workers.stderr is not None
            async with asyncio.timeout(60):  # both children say they are waiting
                waiting = 0
                while waiting < 2:
                    line = await workers.stderr.readline()
                    assert line, "the workers ended instead of waiting for the database"
                    waiting += b"database unavailable" in line and b"retry 1 " in line
            await server.start()
            await _all_complete(server, workers)
        finally:
            code, _ = await _stop(workers)
    assert code == 0
