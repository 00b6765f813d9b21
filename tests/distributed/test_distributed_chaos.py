"""Chaos: three worker processes, fifty videos, one worker SIGKILLed while ffmpeg renders and
another while it waits on a paid API call; both restarted. Nothing is lost, nothing is done
twice, and the dead workers' jobs are visible as stuck until the lease reaper recovers them.

Real PostgreSQL and Redis Streams (skip with the reason, fail under ``CI=true``, when absent).
Each worker has its own work folder ("host") and shares only the database, the broker, the
artifact store and the API (one served sandbox that counts what it receives). The test waits on
observed state, never on a guessed sleep: a render is caught by freezing the worker's process
group (SIGSTOP) and seeing ffmpeg still writing a clip; an API call is caught by holding the
request at the sandbox's door and finding which worker's socket sent it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import psutil
import pytest
import uvicorn
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from opusclip_lib.dashboard.board import stuck_jobs
from opusclip_lib.db import Database, api_calls, jobs
from opusclip_lib.db.workers import summary
from opusclip_lib.distributed.brokers import BrokerSettings
from opusclip_lib.media.samples import sample_video
from opusclip_lib.sandbox import build_app
from opusclip_lib.sandbox.endpoints import sandbox_config
from opusclip_lib.sandbox.server import uvicorn_config

pytestmark = pytest.mark.slow

VIDEOS = 50
WORKERS = 3
STALE_AFTER_S = 3.0
STUCK_AFTER_S = 0.5  # the board shows a job stuck well before the reaper takes it back
WAIT_S = 240.0
RENDERED = "render: clip % ffmpeg rendered%"
STARTED = "render: clip % ffmpeg started"








def distinct_media(folder: Path, count: int) -> list[Path]:
    """``count`` short talks, each a different length of the sample (so a different file, a
    different video and different audio), cut by stream copy in one ffmpeg run."""
    folder.mkdir(parents=True)
    outputs = [folder / f"talk{index:02d}.mp4" for index in range(count)]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin",
               "-i", str(sample_video("opusSample1"))]
    for index, path in enumerate(outputs):
        command += ["-t", f"{3.0 + index * 0.05:.2f}", "-c", "copy", str(path)]
    subprocess.run(command, check=True, timeout=60)
    return outputs


class Door:
    """The sandbox behind a door that counts every request by provider, and holds the next
    request whose path contains ``fragment`` once :meth:`hold` is called, until released."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.received: Counter[str] = Counter()
        self.fragment: str | None = None
        self.caught: asyncio.Future[int] | None = None
        self.released = asyncio.Event()

    def hold(self, fragment: str) -> asyncio.Future[int]:
        """The local port of the held request's client, once one arrives."""
        self.fragment = fragment
        self.caught = asyncio.get_running_loop().create_future()
        return self.caught

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            self.received[path.split("/")[1]] += 1
            if self.fragment is not None and self.fragment in path and self.caught is not None:
                self.fragment = None
                self.caught.set_result(scope["client"][1])
                await self.released.wait()  # its client is dead by then: answer nobody
                await Response(status_code=503)(scope, receive, send)
                return
        await self.app(scope, receive, send)


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """``app`` on a loopback port, on this loop (so the door's events are this loop's)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(app))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve(sockets=[sock]), name="chaos sandbox")
    try:
        while not server.started:
            assert not task.done(), "the sandbox did not start"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Host:
    """One worker process, in its own work folder and process group."""

    index: int
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Cluster:
    env: dict[str, str]
    root: Path
    target: str

    async def start(self, index: int) -> Host:
        log = (self.root / f"host{index}.log").open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "opusclip_lib", "worker", "--processes", "1",
                "--work-dir", str(self.root / f"host{index}"),
                "--artifacts", str(self.root / "shared"), "--target", self.target,
                "--clips", "1", "--max-clip-seconds", "1", "--no-captions",
                "--concurrency", "4", "--heartbeat", "0.2",
                "--stale-after", str(STALE_AFTER_S), "--retry-backoff", "0.05",
                "--sweep", "0.5", "--drain-deadline", "5",
                env=self.env, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        return Host(index, process)

    def log(self, index: int) -> str:
        return (self.root / f"host{index}.log").read_text()[-3000:]


def _render_running(pid: int) -> bool:
    """An ffmpeg child of ``pid`` writing a clip render (not a probe, an audio cut or a mux)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE or "ffmpeg" not in child.name().lower():
                continue
            command = child.cmdline()
        except psutil.NoSuchProcess:
            continue
        output = command[-1] if command else ""
        if "/clips/." in output and output.endswith(".part.mp4") and ".voiced." not in output:
            return True
    return False


HALTED = (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DISK_SLEEP)
"""No user code runs in these with a SIGSTOP pending: a process in uninterruptible sleep stops
on its way back to user space. (A worker spawning ffmpeg waits in the kernel, uninterruptibly,
for a vfork child that the same SIGSTOP stopped before its exec: it never reaches "stopped".)"""


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The process group of ``pid`` stopped (every member seen halted) for the block."""
    os.killpg(pid, signal.SIGSTOP)
    try:
        group = psutil.Process(pid)
        for member in [group, *group.children(recursive=True)]:
            try:
                while member.status() not in HALTED:
                    pass
            except psutil.NoSuchProcess:
                pass
        yield
    finally:
        with suppress(ProcessLookupError):  # the block killed the group
            os.killpg(pid, signal.SIGCONT)


async def unsaved_effects(db: Database, shared: Path) -> set[str]:
    """Effects recorded whose artifact is not in the store yet: a paid call logged in
    ``api_calls``, or a render noted as finished, in the instant before its put completes.

    A worker killed in that instant loses an answer it paid for, and the next worker pays
    again: the one window no design closes without the provider's help (see the README). The
    kills below avoid it, so what they test is everything else."""
    stored = _stored_keys(shared)
    hashes = {api_calls.request_hash(key) for key in stored}
    logged = {row["request_hash"] for row in await db.fetch("SELECT request_hash FROM api_calls")}
    rendered = await db.fetch(
        "SELECT c.id, v.youtube_id FROM clips c JOIN videos v ON v.id = c.video_id "
        f"WHERE c.id IN ({', '.join(map(str, await _per_clip(db, RENDERED))) or 'NULL'})")
    renders = {f"videos/{row['youtube_id']}/clips/{row['id']}.mp4" for row in rendered}
    return (logged - hashes) | (renders - stored)


def _stored_keys(shared: Path) -> set[str]:
    return {path.relative_to(shared).as_posix() for path in shared.rglob("*")
            if path.is_file() and not path.name.startswith(".")}


@asynccontextmanager
async def all_frozen(db: Database, hosts: list[Host], shared: Path) -> AsyncIterator[bool]:
    """Every host frozen for the block; whether no effect is caught half-saved."""
    with ExitStack() as stack:
        for host in hosts:
            stack.enter_context(frozen(host.pid))
        yield not await unsaved_effects(db, shared)


async def kill_while_rendering(db: Database, hosts: list[Host], shared: Path) -> Host:
    """SIGKILL a host caught (all frozen) with ffmpeg rendering a clip."""
    async with asyncio.timeout(WAIT_S):
        while True:
            for host in hosts:
                assert host.process.returncode is None
                if not _render_running(host.pid):
                    continue
                async with all_frozen(db, hosts, shared) as settled:
                    if settled and _render_running(host.pid):
                        os.killpg(host.pid, signal.SIGKILL)
                        await host.process.wait()
                        return host
            await asyncio.sleep(0.01)


async def kill_during_call(db: Database, hosts: list[Host], shared: Path, door: Door,
                           fragment: str) -> Host:
    """SIGKILL the host whose request to ``fragment`` the door is holding."""
    port = await asyncio.wait_for(door.hold(fragment), WAIT_S)
    try:
        [caller] = [host for host in hosts if port in {
            c.laddr.port for c in psutil.Process(host.pid).net_connections("tcp") if c.laddr}]
        async with asyncio.timeout(WAIT_S):
            while True:
                async with all_frozen(db, hosts, shared) as settled:
                    if settled:
                        os.killpg(caller.pid, signal.SIGKILL)
                        await caller.process.wait()
                        return caller
                await asyncio.sleep(0.01)
    finally:
        door.released.set()


async def wait_until(db: Database, cluster: Cluster, hosts: list[Host],
                     condition: Callable[[], Any], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while not await condition():
                for host in hosts:
                    assert host.process.returncode is None, cluster.log(host.index)
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"{what}: not within {WAIT_S:g} s; jobs {await jobs.queue_counts(db)}")


def _worker_pid(name: str | None) -> int | None:
    return int(name.split(":")[1]) if name else None


@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
async def test_killed_workers_lose_nothing_and_repeat_nothing(
        db: Database, database_url: str, broker: BrokerSettings, tmp_path: Path) -> None:
    media = distinct_media(tmp_path / "media", VIDEOS)
    door = Door(build_app(sandbox_config()))
    async with serving(door) as target:
        env = {**os.environ, "OPUSCLIP_DATABASE_URL": database_url,
               "OPUSCLIP_BROKER_URL": broker.url, "OPUSCLIP_BROKER_PREFIX": broker.prefix}
        cluster = Cluster(env, tmp_path, target)
        hosts = [await cluster.start(index) for index in range(WORKERS)]
        try:
            await wait_until(db, cluster, hosts, lambda: _alive(db, WORKERS), "workers alive")
            enqueue = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "opusclip_lib", "enqueue", *map(str, media), env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            _, err = await enqueue.communicate()
            assert enqueue.returncode == 0, err.decode()[-3000:]

            # A dead worker's jobs show as stuck (no live lease) on the board, then the reaper
            # takes them back; only then do the two hosts come back.
            async def stuck_seen(victim: Host) -> None:
                async def shown() -> bool:
                    stuck = await stuck_jobs(db, STUCK_AFTER_S)
                    return victim.pid in {_worker_pid(job["worker"]) for job in stuck}
                await wait_until(db, cluster, [host for host in hosts
                                               if host.process.returncode is None],
                                 shown, f"host {victim.index}'s jobs shown stuck")

            rendering = await kill_while_rendering(db, hosts, tmp_path / "shared")
            await stuck_seen(rendering)
            live = [host for host in hosts if host is not rendering]
            calling = await kill_during_call(db, live, tmp_path / "shared", door, "/stability/")
            await stuck_seen(calling)
            victims = {rendering.pid, calling.pid}
            survivor = next(host for host in live if host is not calling)

            async def reaped() -> bool:
                messages = await db.fetch("SELECT message FROM job_events WHERE message LIKE "
                                          "'no heartbeat from %'")
                found = {_worker_pid(row["message"].split()[3]) for row in messages}
                return found >= victims
            await wait_until(db, cluster, [survivor], reaped, "dead workers' jobs reaped")

            hosts = [survivor, *[await cluster.start(host.index)
                                 for host in (rendering, calling)]]

            async def finished() -> bool:
                return await jobs.queue_counts(db) == {"completed": VIDEOS}
            await wait_until(db, cluster, hosts, finished, "every video completed")
            assert await stuck_jobs(db, STUCK_AFTER_S) == []
        finally:
            for host in hosts:
                if host.process.returncode is None:
                    host.process.send_signal(signal.SIGTERM)
            for host in hosts:
                async with asyncio.timeout(WAIT_S):
                    await host.process.wait()
    for host in hosts:
        assert host.process.returncode == 0, cluster.log(host.index)

    # Each clip rendered exactly once: one finished ffmpeg render per clip; a clip started
    # twice was started first by a worker killed while rendering it.
    clip_rows = await db.fetch("SELECT * FROM clips ORDER BY id")
    assert len(clip_rows) == VIDEOS
    finished_runs = await _per_clip(db, RENDERED)
    assert finished_runs == {row["id"]: 1 for row in clip_rows}
    started_runs = await _per_clip(db, STARTED)
    restarted = {clip for clip, runs in started_runs.items() if runs > 1}
    assert restarted, "the render killed mid-way must have been started again"
    assert all(started_runs[clip] == 2 for clip in restarted)
    unfinished = await db.fetch(
        "SELECT s.worker FROM job_events s WHERE s.message LIKE ? AND NOT EXISTS (SELECT 1 "
        "FROM job_events f WHERE f.job_id = s.job_id AND f.worker = s.worker AND f.message "
        "LIKE ?)", (STARTED, RENDERED))
    cut_short = {_worker_pid(row["worker"]) for row in unfinished}
    assert rendering.pid in cut_short, cut_short  # (the other victim may have been rendering)
    assert cut_short <= victims, cut_short

    # Each paid call once per artifact, counted from api_calls.
    repeated = await db.fetch("SELECT * FROM api_calls WHERE request_hash IN (SELECT "
                              "request_hash FROM api_calls GROUP BY request_hash "
                              "HAVING count(*) > 1) ORDER BY request_hash, id")
    assert repeated == []
    logged = Counter({row["provider"]: int(row["n"]) for row in await db.fetch(
        "SELECT provider, count(*) AS n FROM api_calls GROUP BY provider")})
    assert logged["stability"] == logged["elevenlabs"] == VIDEOS
    assert VIDEOS <= logged["openai"] <= 2 * VIDEOS  # a response cache's answers log nothing
    # The provider also saw the held call (and any other the kills cut off once sent): a call
    # killed in flight has reached the provider and is asked again, which no log can undo.
    missed = {provider: door.received[provider] - logged[provider] for provider in logged}
    assert missed["stability"] >= 1, missed
    assert all(0 <= n <= 8 for n in missed.values()), missed

    # Every user-facing file is in the shared store, where the rows say.
    shared = tmp_path / "shared"
    for row in clip_rows:
        for column in ("clip_path", "thumbnail_path", "voiceover_path"):
            path = Path(row[column])
            assert path.is_relative_to(shared), (column, path)
            assert path.is_file(), (column, path)  # noqa: ASYNC240 - a stat


async def _alive(db: Database, count: int) -> bool:
    return (await summary(db, alive_within_s=60)).workers_alive >= count


async def _per_clip(db: Database, pattern: str) -> dict[int, int]:
    rows = await db.fetch("SELECT message FROM job_events WHERE message LIKE ?", (pattern,))
    return dict(Counter(int(row["message"].split()[2].rstrip(":")) for row in rows))
