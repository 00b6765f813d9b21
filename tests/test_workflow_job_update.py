"""The workflow's ``JobUpdate`` carries the job's ``kind`` and ``at``: pushed over LISTEN/NOTIFY
or Redis, each status change arrives with the same values the polling feed reads from
``job_events``, so the live board's columns are filled whatever the transport."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from opusclip_lib.db import Database, clear, connect, jobs
from opusclip_lib.monitoring import LiveStatus, Update, open_feed
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.endpoints import sandbox_endpoints
from opusclip_lib.workflow import (
    KIND,
    UNLIMITED,
    JobUpdate,
    Services,
    WorkflowConfig,
    job_update,
    open_services,
    run_video,
)
from tests.test_monitoring_feed import collect


@pytest.fixture(params=["redis", "postgres"])
def push(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def redis_for(push: str, request: pytest.FixtureRequest) -> str | None:
    """The Redis URL when pushing through Redis (NOTIFY needs no server besides PostgreSQL)."""
    return request.getfixturevalue("redis_url") if push == "redis" else None


@pytest.fixture
async def db(push: str, tmp_path: Path,
             scratch_namespaces: Callable[[str], str],
             request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """Redis pushes for a SQLite file (as in notebook 32's CI run), NOTIFY for PostgreSQL."""
    url = (scratch_namespaces(request.getfixturevalue("postgres_url")) if push == "postgres"
           else f"sqlite:///{tmp_path}/updates.db")
    async with connect(url, min_size=1, max_size=4) as database:
        await clear(database)
        yield database


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    endpoints = sandbox_endpoints(build_app(SandboxConfig.unlimited()))
    async with open_services(endpoints, limits=UNLIMITED) as opened:
        yield opened


def status_changes(updates: list[Update]) -> list[tuple[int, str, str, datetime]]:
    """``(job_id, status, kind, at)`` of each update that changed its job's status."""
    last: dict[int, str] = {}
    changes = []
    for update in updates:
        if last.get(update["job_id"]) != update["status"]:
            changes.append((update["job_id"], update["status"], update["kind"], update["at"]))
        last[update["job_id"]] = update["status"]
    return changes


async def test_job_update_names_the_kind_and_the_time_of_the_change(tmp_path: Path) -> None:
    async with connect(f"sqlite:///{tmp_path}/one.db") as db:
        job = await jobs.enqueue(db, KIND)
    update = job_update(job)
    assert update["kind"] == KIND
    assert update["at"] is not None
    assert datetime.fromisoformat(update["at"]) == job.updated_at  # ISO-8601 with its UTC offset


async def test_pushed_updates_carry_what_the_polling_feed_reads(
        db: Database, services: Services, push: str, redis_for: str | None,
        tmp_path: Path) -> None:
    published: list[JobUpdate] = []
    channel = f"opusclip_test_{secrets.token_hex(4)}"  # Redis's default channel is server-wide
    async with (open_feed(db, redis_for, transport=push, channel=channel) as pushed,
                open_feed(db, transport="polling") as polled,
                pushed.updates() as heard, polled.updates() as read):

        async def publish(update: JobUpdate) -> None:
            published.append(update)
            await pushed.publish(update)

        config = WorkflowConfig(work_dir=tmp_path / "work", render=False, clips=2, poll_s=0.02)
        job = await run_video(db, services, "opusSample1", config, on_change=publish)
        received = await collect(heard, len(published))
        polled_updates = await collect(read, len(await jobs.job_events(db, job.id)))

    assert job.status == "completed"
    assert {update["kind"] for update in received} == {KIND}
    assert status_changes(received) == status_changes(polled_updates)
    board = LiveStatus()  # notebook 32's live table: its kind and at columns are filled
    board.apply_all(received)
    assert board.table().loc[job.id, ["kind", "at"]].tolist() == [KIND, polled_updates[-1]["at"]]
    # A stage change within one status is stamped when it happened, not with the status's time.
    stage_moves = [(before["at"], update["at"]) for before, update in pairwise(received)
                   if update["status"] == before["status"]]
    assert stage_moves
    assert all(earlier < later for earlier, later in stage_moves)
