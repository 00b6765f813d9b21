"""``opusclip bench scale``: what more worker processes buy, and what the job queue costs.

    opusclip bench scale --database postgresql://... --json build/bench/scale.json \\
        --plot build/bench/scale.png

Every part runs on fresh scratch schemas of ``--database`` (default ``$OPUSCLIP_POSTGRES_URL``):

* **processes**: ``opusclip worker`` with ``--processes`` 1, 2 and 4, each process running
  ``--concurrency`` videos at a time (the embedded default: no broker, the workers poll the
  database), against one sandbox served by a process of its own (``bench pipeline``'s). The
  videos (``--waves`` x processes x concurrency) are enqueued in one transaction once every
  worker is alive; the time is the database's, from the first job's creation to the last one's
  finish. Rendering off, each count's videos/min over the critical-path bound of everything in
  flight, ``N C / L`` (``bench pipeline``'s bound; target >= 0.9 at every count). The workers
  run with ``--no-response-cache``: the bench's videos share a few samples' soundtracks, so
  after the warm-up wave a cache would answer their highlights question and the runs would beat
  a bound that counts every wait. ``--concurrency`` defaults to 4: the bound counts only the API
  waits, and past 16 videos in flight on this machine's cores each video's own local work grows (the
  download stage, which copies and probes the media, took 0.24 s at 16 and 0.38 s at 32), so
  4 x 8 measures the machine rather than the workers. Rendering on,
  2 processes against 1, ``--render-videos`` per process (target >= 1.7x). A worker process
  starts one ffmpeg per core it may use, so one unpinned process already spreads its renders
  over both cores; the comparison therefore pins each worker process to a core of its own (as a
  cluster gives each worker one CPU), and an unpinned single process runs beside it for reference.
* **claims**: empty jobs claimed and finished per second by ``--claim-workers`` processes in a
  closed loop: ``claim(limit=1)`` and a commit per finished job; ``claim(limit=B)`` and a commit
  per job; ``claim(limit=B)`` and one ``jobs.complete`` per batch (target >= 5,000 jobs/s for the
  best). Each row also gives the milliseconds per claim call and per finish call, and the
  client's CPU per job, to show where the time goes.
* **brokers**: ``bench dispatch``'s :func:`~opusclip_lib.bench.dispatch.measure` per broker
  (``--brokers``; default ``none`` and each of ``OPUSCLIP_REDIS_URL``, ``OPUSCLIP_RABBITMQ_URL``,
  ``OPUSCLIP_NATS_URL`` that is set): the enqueue-to-claim latency of one job, and the cost per
  job of a burst.
* **saturation**: ``bench pipeline``'s batches in this one process at ``--saturation`` levels,
  rendering off: where one process stops scaling and its CPU milliseconds per video; then its
  memory over ``--memory-videos`` videos (resident size, last third against first: < 10%).

``--parts`` runs a subset. Throughput on a shared machine is noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import queue
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from threading import BrokenBarrierError
from typing import Any

from opusclip_lib.bench import dispatch, pipeline
from opusclip_lib.bench._output import save_json
from opusclip_lib.bench.pipeline import Memory, Run, Settings, fresh_database, stage_latencies
from opusclip_lib.db import Database, connect, jobs, workers
from opusclip_lib.db.jobs import FINISHED
from opusclip_lib.db.maintenance import scratch_database, vacuum
from opusclip_lib.media import cpu_slots
from opusclip_lib.sandbox.endpoints import sandbox_endpoints
from opusclip_lib.targets import SERVED_SANDBOX
from opusclip_lib.workflow import (
    OPTIMISED,
    UNLIMITED,
    DroppingRecorder,
    Engine,
    WorkflowConfig,
    critical_path_bound,
    open_services,
)

TARGET_RATIO = pipeline.TARGET_RATIO
TARGET_RENDER_SPEEDUP = 1.7
TARGET_CLAIMS_PER_S = 5000.0
PARTS = ("processes", "render", "claims", "brokers", "saturation")
CLAIM_KIND = "bench.scale"
ALIVE_WITHIN_S = 30.0
START_TIMEOUT_S = 60.0
STALL_S = 120.0
"""A batch whose finished count has not moved for this long has a broken worker: stop."""
STOP_TIMEOUT_S = 30.0
BROKER_ENV = ("OPUSCLIP_REDIS_URL", "OPUSCLIP_RABBITMQ_URL", "OPUSCLIP_NATS_URL")


# --- processes ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ProcessRun:
    """One batch worked by ``processes`` ``opusclip worker`` processes."""

    processes: int
    concurrency: int
    """Videos in flight per process."""
    render: bool
    pinned: bool
    """Each process confined to one core (its ffmpeg runs too)."""
    videos: int
    completed: int
    seconds: float
    bound_per_min: float
    cpu_s: float
    """CPU time of the worker processes and the ffmpeg runs they started, during the batch."""
    cores: int

    @property
    def videos_per_min(self) -> float:
        return 60 * self.completed / self.seconds if self.seconds else 0.0

    @property
    def ratio(self) -> float:
        return self.videos_per_min / self.bound_per_min

    @property
    def cpu_share(self) -> float:
        """The share of the machine's cores the workers kept busy."""
        return self.cpu_s / (self.seconds * self.cores) if self.seconds else 0.0

    def row(self) -> dict[str, Any]:
        return asdict(self) | {"videos_per_min": self.videos_per_min, "ratio": self.ratio,
                               "cpu_share": self.cpu_share}


class WorkerTeam:
    """``opusclip worker --processes N`` in a child process: its pids, pinning and CPU time."""

    def __init__(self, command: asyncio.subprocess.Process, processes: int, log: Path) -> None:
        import psutil  # the [bench] extra

        self.command = command
        self.processes = processes
        self.log = log
        self._root = psutil.Process(command.pid)

    def workers(self) -> list[Any]:
        """The worker processes (``psutil.Process``): the command itself, or its children."""
        return [self._root] if self.processes == 1 else self._root.children()

    def pin(self) -> None:
        """One core per worker process, round robin over the cores this process may use."""
        cores = sorted(os.sched_getaffinity(0))
        for index, worker in enumerate(self.workers()):
            worker.cpu_affinity([cores[index % len(cores)]])

    def cpu_s(self) -> float:
        """The workers' CPU time, with their finished (reaped) children's."""
        total = 0.0
        for worker in self.workers():
            times = worker.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        return total

    def kill(self) -> None:
        """SIGKILL the workers and the command (a drain that did not end)."""
        import psutil

        for worker in [*self.workers(), self._root]:
            with suppress(psutil.NoSuchProcess):
                worker.kill()

    def check(self) -> None:
        """Raise if the command ended: a worker that died would leave the batch waiting."""
        if self.command.returncode is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"opusclip worker exited with {self.command.returncode}: {tail}")


@asynccontextmanager
async def worker_team(url: str, root: str, config: WorkflowConfig, *, processes: int,
                      concurrency: int, log: Path) -> AsyncIterator[WorkerTeam]:
    """``opusclip worker`` with ``processes`` processes on ``url``, the sandbox at ``root`` and
    no broker; SIGTERM (a drain) on exit."""
    argv = [sys.executable, "-m", "opusclip_lib.cli", "worker", "--database", url,
            "--target", f"{SERVED_SANDBOX}{root}", "--processes", str(processes),
            "--concurrency", str(concurrency),
            "--clips", str(config.clips), "--render" if config.render else "--no-render",
            "--work-dir", str(config.work_dir), "--heartbeat", str(config.heartbeat_s),
            "--stale-after", str(config.stale_after_s), "--no-response-cache"]
    if config.max_clip_s is not None:
        argv += ["--max-clip-seconds", str(config.max_clip_s)]
    env = {key: value for key, value in os.environ.items() if key != "OPUSCLIP_BROKER_URL"}
    with log.open("wb") as stderr:
        command = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr, env=env)
    team = WorkerTeam(command, processes, log)
    try:
        yield team
    finally:
        if command.returncode is None:
            command.send_signal(signal.SIGTERM)  # the supervisor passes it on: each drains
            try:
                await asyncio.wait_for(command.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                team.kill()
                await command.wait()


async def _wait_alive(db: Database, team: WorkerTeam) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while (await workers.summary(db, alive_within_s=ALIVE_WITHIN_S)).workers_alive \
            < team.processes or len(team.workers()) < team.processes:
        team.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{team.processes} worker process(es) did not start within "
                               f"{START_TIMEOUT_S:g} s")
        await asyncio.sleep(0.1)


async def _wait_finished(db: Database, job_ids: list[int], team: WorkerTeam) -> None:
    loop = asyncio.get_running_loop()
    finished, moved_at = 0, loop.time()
    while finished < len(job_ids):
        await asyncio.sleep(0.2)
        team.check()
        counts = await jobs.count_by_status(db, job_ids)
        now_finished = sum(n for status, n in counts.items() if status in FINISHED)
        if now_finished > finished:
            finished, moved_at = now_finished, loop.time()
        elif loop.time() - moved_at > STALL_S:
            raise RuntimeError(f"no job finished for {STALL_S:g} s: {counts}")


async def run_processes(settings: Settings, root: str, ids: list[str], folder: Path, *,
                        processes: int, concurrency: int, render: bool, pin: bool = False,
                        warmup: Sequence[str] = ()) -> ProcessRun:
    """``ids`` worked by ``processes`` worker processes on a fresh database, after ``warmup``
    (other videos: a process's first video pays its lazy imports and first connections); the
    sandbox is served at ``root`` with the latency profile times ``settings.scale``."""
    name = f"p{processes}-c{concurrency}-{'render' if render else 'api'}{'-pinned' * pin}"
    config = WorkflowConfig(work_dir=folder / name, clips=settings.clips, render=render,
                            max_clip_s=settings.clip_s, heartbeat_s=10.0, stale_after_s=120.0)
    async with fresh_database(settings.database_url, folder, name) as url, \
            connect(url, recorder=DroppingRecorder()) as db, \
            open_services(sandbox_endpoints(root), limits=UNLIMITED) as services, \
            worker_team(url, root, config, processes=processes, concurrency=concurrency,
                        log=folder / f"{name}.log") as team:
        await _wait_alive(db, team)
        if pin:
            team.pin()
        engine = Engine(db, services, config)
        if warmup:
            await _wait_finished(db, [job.id for job in await engine.enqueue(warmup)], team)
        cpu_before = team.cpu_s()
        job_ids = [job.id for job in await engine.enqueue(ids)]
        await _wait_finished(db, job_ids, team)
        cpu_s = team.cpu_s() - cpu_before
        counts = await jobs.count_by_status(db, job_ids)
        failed = await jobs.list_jobs(db, status="failed", limit=1)
        batch = await jobs.list_jobs(db, limit=len(ids) + len(warmup))
    measured = [job for job in batch if job.id in set(job_ids)]
    first = min((job.created_at for job in measured if job.created_at), default=None)
    last = max((job.finished_at for job in measured if job.finished_at), default=None)
    seconds = (last - first).total_seconds() if first and last else 0.0
    bound = 60 * critical_path_bound(stage_latencies(settings.scale, settings.clips, OPTIMISED),
                                     processes * concurrency)
    if counts.get("completed", 0) != len(ids):
        reason = f"; {failed[0].error_code}: {failed[0].error_message}" if failed else ""
        print(f"  ! {name}: {counts}{reason}")
    return ProcessRun(processes, concurrency, render, pin, len(ids), counts.get("completed", 0),
                      seconds, bound, cpu_s, cpu_slots())


@contextmanager
def sandbox(scale: float, count: int, folder: Path) -> Iterator[tuple[str, list[str]]]:
    """``bench pipeline``'s sandbox process and a catalogue of ``count`` videos: (root, ids)."""
    ids = pipeline.write_catalogue(folder / "catalogue.json", count)
    with pipeline.sandbox_process(scale, folder / "catalogue.json") as root:
        yield root, ids


async def measure_processes(database_url: str, counts: Sequence[int] = (1, 2, 4), *,
                            concurrency: int = 4, waves: int = 2, render: bool = False,
                            pin: bool = False, scale: float = 1.0, clips: int = 3,
                            clip_s: float = 3.0) -> list[ProcessRun]:
    """Throughput against worker processes: one batch of ``waves * N * concurrency`` videos per
    count ``N``, each on a fresh scratch database of ``database_url``."""
    settings = Settings(database_url, scale, clips, clip_s)
    most = waves * max(counts) * concurrency
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as temp, \
            sandbox(scale, most + max(counts) * concurrency, Path(temp)) as (root, ids):
        return [await run_processes(settings, root, ids[:waves * n * concurrency], Path(temp),
                                    processes=n, concurrency=concurrency, render=render, pin=pin,
                                    warmup=ids[most:most + n * concurrency])
                for n in counts]


# --- claims -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClaimRun:
    """Empty jobs claimed and completed by ``workers`` processes in a closed loop."""

    workers: int
    batch: int
    """``claim(limit=batch)``."""
    commit_per_job: bool
    """Each job completed in its own transaction (else the whole batch in one)."""
    jobs: int
    seconds: float
    claim_calls: int
    claim_s: float
    finish_calls: int
    finish_s: float
    cpu_s: float
    """The claiming processes' own CPU time (not the database server's)."""

    @property
    def mode(self) -> str:
        return (f"claim({self.batch}), "
                f"{'commit per job' if self.commit_per_job else 'complete per batch'}")

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0

    @property
    def ms_per_claim(self) -> float:
        return 1000 * self.claim_s / self.claim_calls if self.claim_calls else 0.0

    @property
    def ms_per_finish(self) -> float:
        return 1000 * self.finish_s / self.finish_calls if self.finish_calls else 0.0

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * self.cpu_s / self.jobs if self.jobs else 0.0

    def row(self) -> dict[str, Any]:
        return asdict(self) | {"mode": self.mode, "jobs_per_s": self.jobs_per_s,
                               "ms_per_claim": self.ms_per_claim,
                               "ms_per_finish": self.ms_per_finish,
                               "cpu_ms_per_job": self.cpu_ms_per_job}


@dataclass(slots=True)
class _Tally:
    jobs: int = 0
    claim_calls: int = 0
    claim_s: float = 0.0
    finish_calls: int = 0
    finish_s: float = 0.0
    seconds: float = 0.0
    cpu_s: float = 0.0
    error: str | None = field(default=None)


async def _claim_loop(url: str, worker: str, batch: int, commit_per_job: bool, seconds: float,
                      barrier: Barrier) -> _Tally:
    tally = _Tally()
    async with connect(url, recorder=DroppingRecorder(), min_size=1, max_size=1) as db:
        await asyncio.to_thread(barrier.wait)
        started, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - started < seconds:
            at = time.perf_counter()
            claimed = await jobs.claim(db, worker, kinds=[CLAIM_KIND], limit=batch)
            tally.claim_calls += 1
            tally.claim_s += time.perf_counter() - at
            if not claimed:
                break
            at = time.perf_counter()
            for chunk in ([[job.id] for job in claimed] if commit_per_job
                          else [[job.id for job in claimed]]):
                tally.jobs += len(await jobs.complete(db, chunk, worker=worker))
                tally.finish_calls += 1
            tally.finish_s += time.perf_counter() - at
        tally.seconds = time.perf_counter() - started
        tally.cpu_s = time.process_time() - cpu
    return tally


def _claimer(url: str, worker: str, batch: int, commit_per_job: bool, seconds: float,
             barrier: Barrier, results: Any) -> None:
    """A claiming process (spawned): its tally, or its error, on ``results``."""
    try:
        tally = asyncio.run(_claim_loop(url, worker, batch, commit_per_job, seconds, barrier))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        barrier.abort()
        tally = _Tally(error=repr(error))
    results.put(tally)


async def measure_claims(database_url: str, *, workers: int, batch: int, commit_per_job: bool,
                         seconds: float = 3.0, jobs_n: int = 30_000) -> ClaimRun:
    """``jobs_n`` empty jobs on a fresh scratch database; ``workers`` processes claim and
    complete them for ``seconds`` (or until none is left), all starting together."""
    context = multiprocessing.get_context("forkserver")  # a clean process, forked per run
    context.set_forkserver_preload([__spec__.name if __spec__ else __name__])
    barrier = context.Barrier(workers + 1, timeout=START_TIMEOUT_S)
    results = context.Queue()
    async with scratch_database(database_url, prefix="bench_scale") as url:
        async with connect(url, recorder=DroppingRecorder()) as db:
            await db.bulk_insert("processing_jobs", ["kind"], [(CLAIM_KIND,)] * jobs_n)
            await vacuum(db, ["processing_jobs"])  # statistics for the claim's plan
        children = [context.Process(target=_claimer, args=(
            url, f"claimer-{n}", batch, commit_per_job, seconds, barrier, results), daemon=True)
            for n in range(workers)]
        for child in children:
            child.start()
        try:
            with suppress(BrokenBarrierError):  # a process failed to start: its error follows
                await asyncio.to_thread(barrier.wait)
            tallies = [await asyncio.to_thread(results.get, True, seconds + START_TIMEOUT_S)
                       for _ in children]
        except queue.Empty:
            raise RuntimeError("a claiming process ended without reporting") from None
        finally:
            for child in children:
                await asyncio.to_thread(child.join, STOP_TIMEOUT_S)
                if child.is_alive():
                    child.kill()
        results.close()
        results.join_thread()
    errors = [t.error for t in tallies if t.error]
    if errors:
        raise RuntimeError(f"a claiming process failed: {errors[0]}")
    return ClaimRun(workers, batch, commit_per_job, sum(t.jobs for t in tallies),
                    max(t.seconds for t in tallies), sum(t.claim_calls for t in tallies),
                    sum(t.claim_s for t in tallies), sum(t.finish_calls for t in tallies),
                    sum(t.finish_s for t in tallies), sum(t.cpu_s for t in tallies))


# --- brokers ------------------------------------------------------------------------------------

def default_brokers() -> list[str]:
    """``none`` and the broker URLs the environment names."""
    return ["none", *(os.environ[name] for name in BROKER_ENV if os.environ.get(name))]


async def measure_brokers(database_url: str, brokers: Sequence[str], *, jobs_n: int = 50,
                          poll_s: float = dispatch.POLL_S) -> list[dispatch.DispatchResult]:
    """``bench dispatch``'s latency and burst throughput per broker (``none``: polling)."""
    async with scratch_database(database_url, prefix="bench_scale") as url, \
            connect(url, recorder=DroppingRecorder()) as db:
        return [await dispatch.measure(db, None if broker == "none" else broker, jobs_n=jobs_n,
                                       poll_s=poll_s) for broker in brokers]


# --- the command --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Check:
    check: str
    value: float | None
    target: str
    ok: bool
    shown: str
    """``value`` as the report prints it."""


@dataclass(slots=True)
class Results:
    processes: list[ProcessRun] = field(default_factory=list)
    claims: list[ClaimRun] = field(default_factory=list)
    brokers: list[dispatch.DispatchResult] = field(default_factory=list)
    saturation: list[Run] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)


def _print_process(run: ProcessRun) -> None:
    print(f"  {run.processes:>3}{run.concurrency:>4}  {'on ' if run.render else 'off'}  "
          f"{'yes' if run.pinned else 'no ':<6}{run.completed:>4}/{run.videos:<4}"
          f"{run.seconds:>9.2f}{run.videos_per_min:>12.1f}{run.bound_per_min:>11.1f}"
          f"{run.ratio:>7.2f}{run.cpu_share:>11.2f}", flush=True)


def _print_claims(run: ClaimRun) -> None:
    print(f"  {run.mode:<32}{run.workers:>3}{run.jobs:>8}{run.seconds:>8.2f}"
          f"{run.jobs_per_s:>10.0f}{run.ms_per_claim:>12.2f}{run.ms_per_finish:>12.2f}"
          f"{run.cpu_ms_per_job:>12.3f}", flush=True)


async def run(args: argparse.Namespace) -> Results:
    results = Results()
    parts = set(args.parts)
    settings = Settings(args.database, args.scale, args.clips, args.clip_s)
    count = max(args.waves * max(args.processes) * args.concurrency,
                args.render_videos * max(args.render_processes),
                *(pipeline.videos_per_level(args.saturation_videos, c) for c in args.saturation),
                args.memory_videos)
    spare = max(*args.processes, *args.render_processes) * args.concurrency
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as temp, ExitStack() as servers:
        folder = Path(temp)
        root, ids = servers.enter_context(sandbox(args.scale, count + spare, folder))
        warmup = ids[count:]
        if parts & {"processes", "render"}:
            latency = sum(stage_latencies(args.scale, 1, OPTIMISED))
            print(f"worker processes (opusclip worker, no broker), latency profile "
                  f"x{args.scale:g}: L = {latency:.2f} s, bound = N C / L")
            print(f"  {'N':>3}{'C':>4}  render pinned videos   seconds  videos/min  bound/min"
                  f"  ratio  cpu share")
        if "processes" in parts:
            for n in args.processes:
                result = await run_processes(
                    settings, root, ids[:args.waves * n * args.concurrency], folder,
                    processes=n, concurrency=args.concurrency, render=False,
                    warmup=warmup[:n * args.concurrency])
                results.processes.append(result)
                _print_process(result)
        if "render" in parts:
            plan = [(n, True) for n in args.render_processes] + [(1, False)]
            for n, pin in plan:
                result = await run_processes(
                    settings, root, ids[:args.render_videos * n], folder, processes=n,
                    concurrency=args.concurrency, render=True, pin=pin, warmup=warmup[:n])
                results.processes.append(result)
                _print_process(result)
        if "claims" in parts:
            print(f"\nclaims: empty jobs claimed and completed for {args.claim_seconds:g} s")
            print(f"  {'mode':<32}{'N':>3}{'jobs':>8}{'seconds':>8}{'jobs/s':>10}"
                  f"{'ms/claim':>12}{'ms/finish':>12}{'cpu ms/job':>12}")
            modes = [(1, True), (args.claim_batch, True), (args.claim_batch, False)]
            for batch, per_job in modes:
                for n in args.claim_workers:
                    claimed = await measure_claims(args.database, workers=n, batch=batch,
                                                   commit_per_job=per_job,
                                                   seconds=args.claim_seconds,
                                                   jobs_n=args.claim_jobs)
                    results.claims.append(claimed)
                    _print_claims(claimed)
        if "brokers" in parts:
            print(f"\nbrokers: {args.broker_jobs} empty jobs, one at a time then at once")
            print(f"  {'broker':<40}{'median ms':>10}{'p95 ms':>9}{'jobs/s':>9}{'ms/job':>9}")
            results.brokers = await measure_brokers(args.database, args.brokers,
                                                    jobs_n=args.broker_jobs)
            for broker in results.brokers:
                print(f"  {broker.broker:<40}{broker.latency_median_ms:>10.2f}"
                      f"{broker.latency_p95_ms:>9.2f}{broker.jobs_per_s:>9.1f}"
                      f"{1000 / broker.jobs_per_s:>9.2f}")
        if "saturation" in parts:
            print(f"\nsaturation: one process (bench pipeline), rendering off, latency profile "
                  f"x{args.scale:g}")
            print(pipeline.RUN_HEADER)
            for level in args.saturation:
                videos = pipeline.videos_per_level(args.saturation_videos, level)
                batch, _ = await pipeline.measure(settings, root, ids[:videos], folder,
                                                  mode=OPTIMISED, concurrency=level,
                                                  render=False)
                results.saturation.append(batch)
                pipeline.print_run(batch)
            if args.memory_videos:
                print(f"\nmemory, rendering off, C={args.memory_concurrency}, latency profile "
                      f"x{args.memory_scale:g}")
                if args.memory_scale != args.scale:
                    root = servers.enter_context(pipeline.sandbox_process(
                        args.memory_scale, folder / "catalogue.json"))
                results.memory = await pipeline.measure_memory(
                    Settings(args.database, args.memory_scale, args.clips, args.clip_s), root,
                    ids[:args.memory_videos], folder, concurrency=args.memory_concurrency)
    return results


def checks(results: Results) -> list[Check]:
    """The targets, each with its measured value."""
    found = [Check(f"{r.processes} process(es), rendering off: videos/min over the "
                   "critical-path bound", r.ratio, f">= {TARGET_RATIO}", r.ratio >= TARGET_RATIO,
                   f"{r.ratio:.2f}")
             for r in results.processes if not r.render]
    pinned = {r.processes: r for r in results.processes if r.render and r.pinned}
    if 1 in pinned and 2 in pinned:
        speedup = pinned[2].videos_per_min / pinned[1].videos_per_min
        found.append(Check("rendering on, 2 processes over 1 (one core each)", speedup,
                           f">= {TARGET_RENDER_SPEEDUP}x", speedup >= TARGET_RENDER_SPEEDUP,
                           f"{speedup:.2f}x"))
    if results.claims:
        best = max(results.claims, key=lambda r: r.jobs_per_s)
        found.append(Check(f"claims: jobs claimed and completed per second (best: {best.mode}, "
                           f"{best.workers} process(es))", best.jobs_per_s,
                           f">= {TARGET_CLAIMS_PER_S:,.0f}",
                           best.jobs_per_s >= TARGET_CLAIMS_PER_S, f"{best.jobs_per_s:,.0f}"))
    if len(results.memory) == 2:
        growth = results.memory[1].rss_third_growth
        found.append(Check(f"resident memory over {results.memory[1].videos} videos, last third "
                           "vs first", growth, f"< {pipeline.TARGET_RSS_GROWTH:.0%}",
                           growth is not None and growth < pipeline.TARGET_RSS_GROWTH,
                           "n/a (too short to sample)" if growth is None else f"{growth:+.1%}"))
    return found


def report(results: Results) -> list[Check]:
    """Findings without a target, then a PASS/MISS line per target; returns the checks."""
    unpinned = next((r for r in results.processes if r.render and not r.pinned), None)
    pinned = {r.processes: r for r in results.processes if r.render and r.pinned}
    if unpinned is not None and 2 in pinned:
        print(f"  rendering on, 1 unpinned process: {unpinned.cpu_share:.2f} of the cores busy; "
              f"2 pinned processes reach {pinned[2].videos_per_min / unpinned.videos_per_min:.2f}x "
              "of it")
    one_process = {r.concurrency: r for r in results.saturation}
    for spread in results.processes:
        alone = one_process.get(spread.processes * spread.concurrency)
        if not spread.render and spread.processes > 1 and alone is not None:
            print(f"  {spread.processes * spread.concurrency} videos in flight: "
                  f"{spread.processes} processes {spread.videos_per_min:.1f} videos/min, one "
                  f"process {alone.videos_per_min:.1f} "
                  f"({spread.videos_per_min / alone.videos_per_min:.2f}x)")
    pipeline.print_saturation(results.saturation)
    if results.brokers:
        polling = next((b for b in results.brokers if b.broker.startswith("none")), None)
        for broker in results.brokers:
            if broker is not polling:
                print(f"  {broker.broker}: {broker.latency_median_ms:.1f} ms from enqueue to "
                      f"claim, {1000 / broker.jobs_per_s:.2f} ms per job in a burst")
    found = checks(results)
    for check in found:
        print(f"  {'PASS' if check.ok else 'MISS'} {check.check}: {check.shown} "
              f"(target {check.target})")
    return found


def plot(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from opusclip_lib.charts.pipeline import throughput_vs_concurrency
    from opusclip_lib.charts.scale import claims_per_second, dispatch_overhead, scaling

    figure, axes = plt.subplots(2, 2, figsize=(14, 9), layout="constrained")
    if results.processes:
        scaling(pd.DataFrame([r.row() for r in results.processes]), ax=axes[0][0])
    if results.claims:
        claims_per_second(pd.DataFrame([r.row() for r in results.claims]),
                          target=TARGET_CLAIMS_PER_S, ax=axes[0][1])
    if results.brokers:
        dispatch_overhead(pd.DataFrame([asdict(b) for b in results.brokers]), ax=axes[1][0])
    if results.saturation:
        throughput_vs_concurrency(pd.DataFrame([r.row() for r in results.saturation]),
                                  ax=axes[1][1])
    for ax in axes.flat:
        if not ax.has_data():
            ax.set_axis_off()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def _ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parts(text: str) -> list[str]:
    chosen = _names(text)
    if unknown := set(chosen) - set(PARTS):
        raise argparse.ArgumentTypeError(f"unknown part(s) {sorted(unknown)}; choose from "
                                         f"{', '.join(PARTS)}")
    return chosen


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="opusclip bench scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=os.environ.get("OPUSCLIP_POSTGRES_URL"),
                        help="a PostgreSQL or MySQL URL (default: $OPUSCLIP_POSTGRES_URL); each "
                             "run gets a scratch schema on it")
    parser.add_argument("--parts", type=_parts, default=list(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--processes", type=_ints, default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=4, help="videos in flight per process")
    parser.add_argument("--waves", type=int, default=2,
                        help="videos per run = waves x processes x concurrency")
    parser.add_argument("--scale", type=float, default=1.0, help="latency profile factor")
    parser.add_argument("--clips", type=int, default=3, help="highlights per video")
    parser.add_argument("--clip-seconds", dest="clip_s", type=float, default=3.0,
                        help="longest clip rendered")
    parser.add_argument("--render-processes", type=_ints, default=[1, 2])
    parser.add_argument("--render-videos", type=int, default=8, help="videos per process")
    parser.add_argument("--claim-workers", type=_ints, default=[1, 2, 4])
    parser.add_argument("--claim-batch", type=int, default=100, help="claim(limit=...)")
    parser.add_argument("--claim-seconds", type=float, default=3.0)
    parser.add_argument("--claim-jobs", type=int, default=30_000,
                        help="empty jobs enqueued before each claims run")
    parser.add_argument("--brokers", type=_names, default=default_brokers(),
                        help="comma-separated broker URLs; none: polling (default: none and "
                             f"the URLs in {', '.join(BROKER_ENV)})")
    parser.add_argument("--broker-jobs", type=int, default=50)
    parser.add_argument("--saturation", type=_ints, default=[16, 32, 64, 128],
                        help="videos in flight in one process")
    parser.add_argument("--saturation-videos", type=int, default=32,
                        help="videos per level (at least 2 x the level)")
    parser.add_argument("--memory-videos", type=int, default=1000, help="0: skip")
    parser.add_argument("--memory-concurrency", type=int, default=16)
    parser.add_argument("--memory-scale", type=float, default=0.05,
                        help="latency factor for the memory runs (they count bytes, not time)")
    parser.add_argument("--json", type=Path, help="write {settings, checks, processes, claims, "
                                                   "brokers, saturation, memory}")
    parser.add_argument("--plot", type=Path, help="write a PNG of the four parts")
    args = parser.parse_args(argv)
    if not args.database or args.database.startswith("sqlite"):
        parser.error("bench scale needs a server database: --database URL or "
                     "OPUSCLIP_POSTGRES_URL")
    if min(args.concurrency, args.waves, args.render_videos, args.claim_batch,
           args.claim_jobs, args.broker_jobs) < 1 or args.claim_seconds <= 0:
        parser.error("sizes and --claim-seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    results = asyncio.run(run(args))
    print()
    found = report(results)
    if args.json:
        save_json(args, args.json, checks=[asdict(c) for c in found],
                  processes=[r.row() for r in results.processes],
                  claims=[r.row() for r in results.claims],
                  brokers=[asdict(b) for b in results.brokers],
                  saturation=[r.row() for r in results.saturation],
                  memory=[asdict(m) for m in results.memory])
    if args.plot:
        plot(results, args.plot)
    missed = [c for c in found if not c.ok]
    print(f"\n{len(missed)} target(s) missed" if missed else "\nall targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
