"""``opusclip enqueue | worker | status`` as processes: real brokers, the sandbox's APIs.

Workers run as ``opusclip worker --processes 2``; the tests wait on the database's state (never a
guessed sleep) and count claims per job in ``job_events``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from opusclip_lib.db import Database, jobs, parse_url
from opusclip_lib.db.workers import QueueSummary as WorkerSummary
from opusclip_lib.db.workers import summary
from opusclip_lib.distributed.brokers import BrokerSettings
from opusclip_lib.distributed.command import worst_exit_code

pytestmark = pytest.mark.slow

VIDEOS = ["opusSample1", "R-j_8U_m7aS", "y4SXvE9rwLb"]
WAIT_S = 120.0








def _database_ports(workers: asyncio.subprocess.Process, server_port: int) -> list[int]:
    """The local ports of the worker tree's connections to the database server.

    The server is shared with the other tests (each has its own schema), so killing every session
    of the database would kill theirs too; ``pg_stat_activity.client_port`` names ours."""
    root = psutil.Process(workers.pid)
    ports = []
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        ports += [c.laddr.port for c in connections if c.raddr and c.raddr.port == server_port]
    return ports


def _env(database_url: str, broker: BrokerSettings) -> dict[str, str]:
    return {**os.environ, "OPUSCLIP_DATABASE_URL": database_url,
            "OPUSCLIP_BROKER_URL": broker.url, "OPUSCLIP_BROKER_PREFIX": broker.prefix}


async def _opusclip(env: dict[str, str], *args: str) -> dict[str, object]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opusclip_lib", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-3000:]
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


async def _start_workers(env: dict[str, str], work_dir: Path,
                         *options: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opusclip_lib", "worker", "--processes", "2",
        "--work-dir", str(work_dir), "--no-render", "--clips", "2", "--heartbeat", "0.2",
        "--stale-after", "2", "--retry-backoff", "0.05", *options, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _wait_for(db: Database, condition: Callable[[dict[str, int]], bool],
                    workers: asyncio.subprocess.Process) -> dict[str, int]:
    """The queue's counts once ``condition`` holds; fails if the workers exit first."""
    async with asyncio.timeout(WAIT_S):
        while not condition(counts := await jobs.queue_counts(db)):
            assert workers.returncode is None, (await workers.communicate())[1][-3000:]
            await asyncio.sleep(0.1)
    return counts


async def _stop(workers: asyncio.subprocess.Process) -> tuple[int, str]:
    if workers.returncode is None:
        workers.send_signal(signal.SIGTERM)
    async with asyncio.timeout(WAIT_S):
        out, _ = await workers.communicate()
    assert workers.returncode is not None
    return workers.returncode, out.decode()


async def workers_summary(db: Database) -> WorkerSummary:
    return await summary(db, alive_within_s=60)


async def _claims_per_job(db: Database) -> list[int]:
    rows = await db.fetch("SELECT job_id, count(*) AS n FROM job_events "
                          "WHERE to_status = 'downloading' GROUP BY job_id ORDER BY job_id")
    return [int(row["n"]) for row in rows]


async def test_two_worker_processes_finish_every_job_once_and_drain_on_sigterm(
        db: Database, database_url: str, broker: BrokerSettings, tmp_path: Path) -> None:
    env = _env(database_url, broker)
    workers = await _start_workers(env, tmp_path / "work", "--sweep", "60")
    try:
        async with asyncio.timeout(WAIT_S):
            while (await workers_summary(db)).workers_alive < 2:
                assert workers.returncode is None, (await workers.communicate())[1][-3000:]
                await asyncio.sleep(0.1)
        enqueued = await _opusclip(env, "enqueue", *VIDEOS)
        assert enqueued["relayed"] == len(VIDEOS)
        await _wait_for(db, lambda counts: counts == {"completed": len(VIDEOS)}, workers)
        status = await _opusclip(env, "status", "--json")
        assert status["workers_alive"] == 2
        assert status["pending"] == 0
        assert status["outbox_unsent"] == 0
    finally:
        code, out = await _stop(workers)
    assert code == 0
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert sum(report["claimed"] for report in reports) == len(VIDEOS)
    assert await _claims_per_job(db) == [1] * len(VIDEOS)
    assert (await _opusclip(env, "status", "--json"))["workers_alive"] == 0


@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
async def test_sigterm_hands_running_stages_back_within_the_deadline(
        db: Database, database_url: str, broker: BrokerSettings, tmp_path: Path) -> None:
    env = _env(database_url, broker)
    await _opusclip(env, "enqueue", *VIDEOS)
    slow = ("--latency", "stability=60000", "--drain-deadline", "0.1")
    workers = await _start_workers(env, tmp_path / "work", *slow)
    try:
        await _wait_for(db, lambda counts: counts.get("pending", 0) == 0, workers)
    finally:
        code, _ = await _stop(workers)
    assert code == 0
    handed_back = await db.fetchval("SELECT count(*) FROM job_events WHERE message LIKE "
                                    "'interrupted%'")
    assert handed_back >= 1
    assert set(await jobs.queue_counts(db)) <= {"pending", "completed"}

    workers = await _start_workers(env, tmp_path / "work")
    try:
        await _wait_for(db, lambda counts: counts == {"completed": len(VIDEOS)}, workers)
    finally:
        await _stop(workers)


@pytest.mark.parametrize("broker_url", ["nats"], indirect=True)
async def test_workers_ride_out_their_database_sessions_being_killed(
        db: Database, database_url: str, broker: BrokerSettings, tmp_path: Path) -> None:
    env = _env(database_url, broker)
    await _opusclip(env, "enqueue", *VIDEOS)
    workers = await _start_workers(env, tmp_path / "work", "--latency", "stability=500")
    try:
        await _wait_for(db, lambda counts: counts.get("pending", 0) < len(VIDEOS), workers)
        ports = _database_ports(workers, parse_url(database_url).port or 5432)
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
            "datname = current_database() AND client_addr = '127.0.0.1' AND client_port = ANY(?)",
            (ports,))
        assert killed >= 2
        await _wait_for(db, lambda counts: counts == {"completed": len(VIDEOS)}, workers)
    finally:
        code, _ = await _stop(workers)
    assert code == 0


async def test_without_a_broker_the_workers_poll_the_database(
        db: Database, database_url: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "OPUSCLIP_BROKER_URL"}
    env["OPUSCLIP_DATABASE_URL"] = database_url
    enqueued = await _opusclip(env, "enqueue", *VIDEOS)
    assert "relayed" not in enqueued
    assert (await _opusclip(env, "status", "--json"))["outbox_unsent"] == 0
    workers = await _start_workers(env, tmp_path / "work")
    try:
        await _wait_for(db, lambda counts: counts == {"completed": len(VIDEOS)}, workers)
    finally:
        code, out = await _stop(workers)
    assert code == 0
    assert all(json.loads(line)["broker"] is None for line in out.splitlines())
    assert await _claims_per_job(db) == [1] * len(VIDEOS)


@pytest.mark.parametrize(("codes", "passed_on", "expected"), [
    ([0, 0], set(), 0),
    ([0, -signal.SIGTERM], {signal.SIGTERM}, 0),  # that child was still importing
    ([0, -signal.SIGTERM], set(), -signal.SIGTERM),  # killed by someone else
    ([-signal.SIGKILL, -signal.SIGTERM], {signal.SIGTERM}, -signal.SIGKILL),
    ([1, -signal.SIGINT], {signal.SIGINT}, 1),
])
def test_a_child_stopped_by_the_passed_on_signal_stopped_cleanly(
        codes: list[int], passed_on: set[int], expected: int) -> None:
    assert worst_exit_code(codes, passed_on) == expected
