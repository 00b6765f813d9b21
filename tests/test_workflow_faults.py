"""The workflow under faults (issue 9): a database outage under a running worker (item 10), an
open circuit breaker (item 11) and a video shorter than its clips (item 17).

The outage is real: PostgreSQL behind a loopback TCP proxy this test controls, which drops every
connection and refuses new ones for a moment (the shared server itself is never touched).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from opusclip_lib.db import Database, clear, connect, failures, jobs
from opusclip_lib.media import ffmpeg_exe
from opusclip_lib.resilience import CircuitBreaker, RetryPolicy
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.endpoints import sandbox_endpoints
from opusclip_lib.workflow import (
    STAGE_NAMES,
    UNLIMITED,
    Endpoints,
    Engine,
    JobUpdate,
    Services,
    WorkflowConfig,
    clean_partials,
    open_services,
    run_batch,
    run_video,
)

IDS = ["opusSample1", "R-j_8U_m7aS", "y4SXvE9rwLb", "cpCGybY9lMR"]
FAST = {"render": False, "heartbeat_s": 0.2, "poll_s": 0.02, "retry_backoff_s": 0.05}
OUTAGE_S = 1.5
GUARD_S = 120  # generous: only a hang trips it


def sandbox(config: SandboxConfig | None = None) -> Endpoints:
    config = config or SandboxConfig.unlimited()
    config.stability.long_side_px = 16  # tiny thumbnails: drawn on the test's event loop
    return sandbox_endpoints(build_app(config))


async def no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def quick_retries(target: Endpoints) -> AsyncIterator[Services]:
    """Services whose retries do not wait (the backoff is the policy's; its sleep is ours)."""
    async with open_services(target, limits=UNLIMITED) as services:
        for name in ("youtube", "openai", "stability", "elevenlabs"):
            policy = services.policy(name)
            assert policy is not None
            policy.retry = RetryPolicy(policy.retry.max_retries, policy.retry.backoff,
                                       sleep=no_sleep)
        yield services


# --- item 10: a database outage under a running worker --------------------------------------


class Proxy:
    """Loopback TCP forwarding to ``upstream``; :meth:`cut` drops every connection and refuses
    new ones (accept, then close) until :meth:`restore`."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.open = True
        self.dropped = 0
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._drop_all()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        self.open = False
        self._drop_all()

    def restore(self) -> None:
        self.open = True

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
            self.dropped += 1
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


async def test_a_worker_rides_out_a_short_database_outage(
        postgres_url: str, scratch_namespaces: Callable[[str], str], tmp_path: Path) -> None:
    scratch = scratch_namespaces(postgres_url)
    parts = urlsplit(scratch)
    outage_started = asyncio.Event()

    async def on_change(update: JobUpdate) -> None:
        if update["stage"] == "analyze":  # mid-batch: jobs are claimed and running
            outage_started.set()

    async with Proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        async def outage() -> None:
            await outage_started.wait()
            proxy.cut()
            await asyncio.sleep(OUTAGE_S)  # the outage's length, not a synchronisation
            proxy.restore()

        async with connect(through(scratch, proxy.port), min_size=2, max_size=4) as db:
            await clear(db)
            config = WorkflowConfig(work_dir=tmp_path / "work", max_attempts=5, **FAST)
            async with (quick_retries(sandbox()) as services, asyncio.timeout(GUARD_S),
                        asyncio.TaskGroup() as group):
                group.create_task(outage())
                report = await run_batch(db, services, IDS, config, concurrency=2,
                                         on_change=on_change)
            failed = [(job.error_code, job.error_message)
                      for job in await jobs.list_jobs(db) if job.status != "completed"]
    assert proxy.dropped > 0  # the outage really cut live connections
    assert report.statuses == {"completed": len(IDS)}, failed


# --- item 11: an open circuit breaker defers the job ----------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(f"sqlite:///{tmp_path}/faults.db") as database:
        yield database


async def test_an_open_breaker_defers_the_job_without_spending_its_attempt(
        db: Database, tmp_path: Path) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("stability", cool_down_s=30.0, clock=clock)
    for _ in range(breaker.failure_threshold):  # a storm just opened it
        breaker.on_failure(TimeoutError(), trial=False)
    config = WorkflowConfig(work_dir=tmp_path / "work", max_attempts=1, **FAST)
    async with quick_retries(sandbox()) as services:
        policy = services.policy("stability")
        assert policy is not None
        policy.breaker = breaker
        engine = Engine(db, services, config)
        [job] = await engine.enqueue(["opusSample1"])
        [claimed] = await engine.claim(1)
        deferred = await engine.process(claimed)
    assert deferred.status == "pending"  # not failed, although it had one attempt only
    assert deferred.attempts == 0  # the claim's attempt was given back
    assert deferred.error_code == "stability.circuit_open"
    assert deferred.run_after is not None
    assert deferred.updated_at is not None
    waits_s = (deferred.run_after - deferred.updated_at).total_seconds()
    assert waits_s == pytest.approx(30.0, abs=1.0)  # until the breaker half-opens
    [handed_back] = [event for event in await jobs.job_events(db, job.id)
                     if event.to_status == "pending" and event.from_status is not None]
    assert "attempt not spent" in (handed_back.message or "")
    assert await failures.failure_groups(db) == []  # a deferral is not a failure to track


async def test_a_stability_storm_ends_with_the_jobs_completed_not_failed(
        db: Database, tmp_path: Path) -> None:
    config = SandboxConfig.unlimited()
    config.inject("stability", "server_error", times=12)  # a storm that ends
    breaker = CircuitBreaker("stability", failure_threshold=3, cool_down_s=0.3)
    workflow = WorkflowConfig(work_dir=tmp_path / "work", max_attempts=2, **FAST)
    updates: list[JobUpdate] = []

    async def on_change(update: JobUpdate) -> None:
        updates.append(update)

    async with quick_retries(sandbox(config)) as services, asyncio.timeout(GUARD_S):
        policy = services.policy("stability")
        assert policy is not None
        policy.breaker = breaker
        report = await run_batch(db, services, IDS[:2], workflow, concurrency=2,
                                 on_change=on_change)
    assert report.statuses == {"completed": 2}
    assert any(u["error_code"] == "stability.circuit_open" for u in updates)  # it did open


# --- item 17: a video shorter than its clips ------------------------------------------------


@pytest.fixture(scope="module")
def one_second_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "one_second.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi",
                    "-i", "testsrc=size=320x180:rate=25:duration=1", "-f", "lavfi",
                    "-i", "sine=duration=1", "-shortest", "-c:v", "libx264", "-c:a", "aac",
                    str(path)], check=True)
    return path


async def test_a_one_second_video_fails_as_a_media_error_naming_the_stage(
        db: Database, tmp_path: Path, one_second_video: Path) -> None:
    config = WorkflowConfig(work_dir=tmp_path / "work", max_clip_s=2.0, clips=2,
                            heartbeat_s=0.2, poll_s=0.02)
    endpoints = dataclasses.replace(sandbox(), youtube_media=lambda _: one_second_video)
    async with quick_retries(endpoints) as services:
        job = await run_video(db, services, "opusSample1", config)
    # Transcribed for real, a one-second video yields at most a one-second clip, or a media
    # error that names its stage; never an internal error (item 17 was a raw ValueError).
    assert job.error_code != "internal_error"
    if job.status == "failed":
        assert (job.error_message or "").split(":")[0] in STAGE_NAMES
        assert job.attempts == 1  # bad media is not retried


# --- item 19: a render killed mid-way leaves its scratch where the next run cleans it --------


def test_the_next_run_removes_a_killed_renders_scratch_folder(tmp_path: Path) -> None:
    clips = tmp_path / "videos" / "opusSample1" / "clips"
    scratch = clips / ".7.k1ll3d00.part-render"
    scratch.mkdir(parents=True)
    (scratch / "captions.ass").write_text("[Script Info]")
    half_clip = clips / ".7.0badf00d.part.mp4"
    half_clip.write_bytes(b"\x00")
    kept = clips / "6.mp4"
    kept.write_bytes(b"\x00")
    assert set(clean_partials(tmp_path / "videos" / "opusSample1")) == {scratch, half_clip}
    assert [p.name for p in clips.iterdir()] == ["6.mp4"]
