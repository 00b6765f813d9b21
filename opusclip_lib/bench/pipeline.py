"""``opusclip bench pipeline``: videos/min of the whole workflow against its critical-path bound.

The four APIs are the sandbox served on loopback by ``serve()`` in a child process (so its
CPU and memory are not the pipeline's), every limit off, each call answering after the latency
profile times ``--scale``: YouTube 100 ms, OpenAI 800 ms, Stability 2 s, ElevenLabs 1 s.

The bound: a video's stages run one after another and a stage's clips side by side, so with
rendering off one video takes at least ``L = 0.1 + 0.8 + 2 + 1 = 3.9 s`` (times the scale), and
``C`` videos in flight finish at most ``C / L`` videos a second. The sweep reports the measured
rate and its ratio to that bound per ``C`` (target >= 0.9 with rendering off; with ``--render``
ffmpeg's CPU time comes on top, on the bound's same ``L``). With ``--render`` each run also
reports the *ffmpeg bound*: the CPU seconds its ffmpeg processes used (``RUSAGE_CHILDREN``, as
the kernel accounted them when they were reaped; the sandbox's own process is still running, so
it is not counted) divided by the cores, the least wall time those renders could take; the
target is that bound over the measured time >= 0.85 at the best concurrency. The naive pipeline
(one video and one clip at a time, no resilience, per-row commits) runs on ``--naive-videos`` for
comparison.
Each level runs at least two waves (``max(--videos, 2 C)`` videos), so ``--concurrency 64,128``
measures where one process saturates: the report names the level past which throughput stops
growing, and the process's own CPU milliseconds per video there (the sandbox's process aside).
``--memory-videos N`` measures the peak memory (tracemalloc, and the RSS growth) of N/10 and N
videos without rendering: it must not grow with N, and over the N-video run the median resident
size of its last third must stay within 10% of its first third's. Every run gets a fresh
database and folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractContextManager,
    ExitStack,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opusclip_lib.bench.stream import memory_growth
from opusclip_lib.config import data_dir
from opusclip_lib.db import connect
from opusclip_lib.db.maintenance import scratch_database
from opusclip_lib.media import cpu_slots
from opusclip_lib.sandbox import SandboxConfig, serve
from opusclip_lib.sandbox.endpoints import LATENCY_PROFILE_MS, sandbox_config, sandbox_endpoints
from opusclip_lib.workflow import (
    NAIVE,
    OPTIMISED,
    UNLIMITED,
    DroppingRecorder,
    Mode,
    WorkflowConfig,
    critical_path_bound,
    open_services,
    run_batch,
)

TARGET_RATIO = 0.9
TARGET_FFMPEG_RATIO = 0.85
TARGET_RSS_GROWTH = 0.10
SATURATED = 0.9
"""A level reaching this share of the best throughput measured is saturated: more videos in
flight no longer buy throughput."""
THUMBNAIL_PX, SPEECH_SECONDS_PER_CHARACTER = 16, 0.005
"""Tiny thumbnails and short speech: drawing and synthesising them is the sandbox's CPU, which a
real API spends on its own machines, not on the cores the pipeline is measured on."""


@dataclass(frozen=True, slots=True)
class Run:
    mode: str
    render: bool
    concurrency: int
    videos: int
    completed: int
    seconds: float
    bound_per_min: float
    ffmpeg_cpu_s: float = 0.0
    cores: int = 1
    cpu_s: float = 0.0
    """This process's CPU time over the batch (its threads included, its children not)."""

    @property
    def ffmpeg_bound_s(self) -> float:
        """The least wall time the run's ffmpeg work could take on all the cores."""
        return self.ffmpeg_cpu_s / self.cores

    @property
    def ffmpeg_ratio(self) -> float:
        return self.ffmpeg_bound_s / self.seconds if self.seconds else 0.0

    @property
    def videos_per_min(self) -> float:
        return 60 * self.completed / self.seconds

    @property
    def ratio(self) -> float:
        return self.videos_per_min / self.bound_per_min

    @property
    def cpu_ms_per_video(self) -> float:
        return 1000 * self.cpu_s / self.completed if self.completed else 0.0

    @property
    def cpu_share(self) -> float:
        """Cores' worth of CPU the process kept busy: near 1.0, it is CPU-bound."""
        return self.cpu_s / self.seconds if self.seconds else 0.0

    def row(self) -> dict[str, Any]:
        return asdict(self) | {"videos_per_min": self.videos_per_min, "ratio": self.ratio,
                               "ffmpeg_bound_s": self.ffmpeg_bound_s,
                               "ffmpeg_ratio": self.ffmpeg_ratio,
                               "cpu_ms_per_video": self.cpu_ms_per_video,
                               "cpu_share": self.cpu_share}


@dataclass(frozen=True, slots=True)
class Memory:
    videos: int
    concurrency: int
    seconds: float
    peak_mb: float
    rss_growth_mb: float
    rss_third_growth: float | None = None
    """Median resident size over the run's last third against its first third's, minus one."""


def stage_latencies(scale: float, clips: float, mode: Mode) -> list[float]:
    """Seconds each stage waits on its API: once per video, or once per clip in a row (naive,
    ``clips`` the mean per video)."""
    per_clip = 1 if mode.parallel else clips
    ms = LATENCY_PROFILE_MS
    return [scale * ms["youtube.videos.list"] / 1000, scale * ms["openai.chat.completions"] / 1000,
            scale * per_clip * ms["stability.generate"] / 1000,
            scale * per_clip * ms["elevenlabs.text_to_speech"] / 1000]


def write_catalogue(path: Path, count: int) -> list[str]:
    """``count`` distinct videos (ids ``bench000000``...) cycling through the sample catalogue."""
    samples = json.loads((data_dir() / "catalogue.json").read_text())["videos"]
    entries = [samples[n % len(samples)] | {"id": f"bench{n:06d}",
                                            "title": f"{samples[n % len(samples)]['title']} #{n}"}
               for n in range(count)]
    path.write_text(json.dumps({"videos": entries}))
    return [entry["id"] for entry in entries]


# --- the sandbox in a child process -----------------------------------------------------------

async def _serve_until_stdin_closes(scale: float, catalogue: Path) -> None:
    config = sandbox_config(LATENCY_PROFILE_MS, scale=scale)
    config.catalogue_path = catalogue
    config.stability.long_side_px = THUMBNAIL_PX
    config.elevenlabs.seconds_per_character = SPEECH_SECONDS_PER_CHARACTER
    await serve_until_stdin_closes(config)


async def serve_until_stdin_closes(config: SandboxConfig) -> None:
    """The child's side of :func:`child_sandbox`: print the root URL, serve until stdin ends."""
    async with serve(config) as urls:
        print(urls.root, flush=True)
        await asyncio.to_thread(sys.stdin.read)


def sandbox_process(scale: float, catalogue: Path) -> AbstractContextManager[str]:
    """A loopback sandbox in its own process; yields its root URL."""
    return child_sandbox(__spec__.name if __spec__ else __name__, str(scale), str(catalogue))


@contextmanager
def child_sandbox(module: str, *args: str) -> Iterator[str]:
    """``python -m MODULE serve ARGS`` (a benchmark serving its sandbox); yields its root URL."""
    command = [sys.executable, "-m", module, "serve", *args]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as server:
        assert server.stdin is not None
        assert server.stdout is not None
        try:
            root = server.stdout.readline().strip()
            if not root.startswith("http"):
                raise RuntimeError("the sandbox process did not start")
            yield root
        finally:
            server.stdin.close()  # ends the server's wait: it shuts uvicorn down
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


# --- runs -------------------------------------------------------------------------------------

@asynccontextmanager
async def fresh_database(url: str | None, folder: Path, name: str) -> AsyncIterator[str]:
    """A new SQLite file, or a scratch schema/database on the server at ``url``."""
    if url is None or url.startswith("sqlite"):
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    async with scratch_database(url, prefix="bench_pipeline") as scratch:
        yield scratch


@dataclass(slots=True)
class Usage:
    """What :func:`peak_memory` saw, filled in when its block ends."""

    peak_mb: float = 0.0
    rss_growth_mb: float = 0.0
    rss_third_growth: float | None = None


@asynccontextmanager
async def peak_memory() -> AsyncIterator[Usage]:
    """tracemalloc's peak and the largest RSS growth seen while the block runs, in MB, and the
    RSS growth of the block's last third over its first (:func:`bench.stream.memory_growth`)."""
    import psutil  # the [bench] extra, needed for this measurement only

    process = psutil.Process()
    before = peak_rss = process.memory_info().rss
    samples: list[tuple[float, int]] = []

    async def sample_rss() -> None:
        nonlocal peak_rss
        while True:
            rss = process.memory_info().rss
            peak_rss = max(peak_rss, rss)
            samples.append((time.perf_counter(), rss))
            await asyncio.sleep(0.05)

    usage = Usage()
    tracemalloc.start()
    sampler = asyncio.create_task(sample_rss())
    try:
        yield usage
    finally:
        usage.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        usage.rss_growth_mb = (peak_rss - before) / 2**20
        usage.rss_third_growth = memory_growth(samples)


def children_cpu_s() -> float:
    """User and system CPU seconds of this process's children that have ended and been reaped:
    during a run, its ffmpeg processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class Settings:
    """What every batch of one benchmark run shares."""

    database_url: str | None
    """``None``: a fresh SQLite file per batch; a server URL: a scratch schema/database."""
    scale: float
    """The sandbox's latency profile factor (it defines the bound)."""
    clips: int = 3
    clip_s: float = 5.0


async def measure(settings: Settings, root: str, ids: list[str], folder: Path, *,
                  mode: Mode, concurrency: int, render: bool, memory: bool = False,
                  ) -> tuple[Run, Memory | None]:
    """One batch on a fresh database and folder (with ``memory``: under :func:`peak_memory`)."""
    name = f"{mode.name}-c{concurrency}-n{len(ids)}-{'render' if render else 'api'}"
    work = folder / name
    config = WorkflowConfig(work_dir=work, mode=mode, clips=settings.clips, render=render,
                            max_clip_s=settings.clip_s, heartbeat_s=10.0,
                            stale_after_s=120.0)
    async with fresh_database(settings.database_url, folder, name) as url, \
            connect(url, recorder=DroppingRecorder()) as db, \
            open_services(sandbox_endpoints(root), cached=mode.cached,
                          limits=UNLIMITED) as services:
        children_before, cpu_before = children_cpu_s(), time.process_time()
        async with peak_memory() if memory else nullcontext(None) as usage:
            report = await run_batch(db, services, ids, config, concurrency=concurrency)
        cpu_s = time.process_time() - cpu_before
        ffmpeg_cpu_s = children_cpu_s() - children_before
        clips = await db.fetchval("SELECT count(*) FROM clips") / max(report.completed, 1)
    shutil.rmtree(work, ignore_errors=True)
    bound = 60 * critical_path_bound(stage_latencies(settings.scale, clips, mode), concurrency)
    if report.completed != len(ids):
        print(f"  ! {name}: {report.statuses}")
    run = Run(mode.name, render, report.concurrency, len(ids), report.completed, report.seconds,
              bound, ffmpeg_cpu_s, cpu_slots(), cpu_s)
    if usage is None:
        return run, None
    return run, Memory(len(ids), concurrency, report.seconds, usage.peak_mb, usage.rss_growth_mb,
                       usage.rss_third_growth)


def videos_per_level(videos: int, concurrency: int) -> int:
    """At least two waves of ``concurrency`` videos: one wave measures start-up, not flow."""
    return max(videos, 2 * concurrency)


def saturation(runs: list[Run]) -> Run | None:
    """The first level (by concurrency) within :data:`SATURATED` of the best throughput
    measured, among the optimised runs without rendering: where one process stops scaling."""
    flat = sorted((r for r in runs if r.mode == "optimised" and not r.render),
                  key=lambda r: r.concurrency)
    best = max((r.videos_per_min for r in flat), default=0.0)
    return next((r for r in flat if r.videos_per_min >= SATURATED * best), None)


RUN_HEADER = (f"  {'mode':<10}{'C':>4}{'videos':>8}{'seconds':>10}{'videos/min':>12}"
              f"{'bound/min':>12}{'ratio':>8}{'cpu ms/video':>14}{'cpu share':>11}")


def print_run(run: Run) -> None:
    """One row under :data:`RUN_HEADER` (and the ffmpeg columns when it rendered)."""
    ffmpeg = (f"{run.ffmpeg_cpu_s:>14.1f}{run.ffmpeg_bound_s:>10.1f}{run.ffmpeg_ratio:>8.2f}"
              if run.render else "")
    print(f"  {run.mode:<10}{run.concurrency:>4}{run.videos:>8}{run.seconds:>10.2f}"
          f"{run.videos_per_min:>12.1f}{run.bound_per_min:>12.1f}{run.ratio:>8.2f}"
          f"{run.cpu_ms_per_video:>14.1f}{run.cpu_share:>11.2f}{ffmpeg}", flush=True)


def print_memory(usage: Memory) -> None:
    third = ("n/a" if usage.rss_third_growth is None
             else f"{usage.rss_third_growth:+.1%}")
    print(f"  {usage.videos:>6} videos  {usage.seconds:8.1f} s  tracemalloc peak "
          f"{usage.peak_mb:7.2f} MB  RSS growth {usage.rss_growth_mb:7.2f} MB, "
          f"last third vs first {third}", flush=True)


async def run(args: argparse.Namespace) -> tuple[list[Run], list[Memory]]:
    runs: list[Run] = []
    memory: list[Memory] = []
    levels = {c: videos_per_level(args.videos, c) for c in args.concurrency}
    count = max(*levels.values(), args.naive_videos, args.memory_videos)
    settings = Settings(args.database_url, args.scale, args.clips, args.clip_s)
    latency = sum(stage_latencies(args.scale, 1, OPTIMISED))
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as temp:
        folder = Path(temp)
        ids = write_catalogue(folder / "catalogue.json", count)
        print(f"{args.videos} videos per run (at least 2 C), {args.clips} clips each, rendering "
              f"{'on' if args.render else 'off'}, latency profile x{args.scale:g}: "
              f"L = {latency:.2f} s per video (optimised), bound = C / L")
        ffmpeg = (f"{'ffmpeg cpu s':>14}{'bound s':>10}{'ratio':>8}" if args.render else "")
        print(f"{RUN_HEADER}{ffmpeg}")
        with ExitStack() as servers:
            root = servers.enter_context(sandbox_process(args.scale, folder / "catalogue.json"))
            for concurrency, videos in levels.items():
                result, _ = await measure(settings, root, ids[:videos], folder, mode=OPTIMISED,
                                          concurrency=concurrency, render=args.render)
                runs.append(result)
                print_run(result)
            if args.naive_videos:
                result, _ = await measure(settings, root, ids[:args.naive_videos], folder,
                                          mode=NAIVE, concurrency=1, render=args.render)
                runs.append(result)
                print_run(result)
            if args.memory_videos:
                print(f"\npeak memory, rendering off, C={args.memory_concurrency}, latency "
                      f"profile x{args.memory_scale:g}")
                if args.memory_scale != args.scale:
                    root = servers.enter_context(sandbox_process(args.memory_scale,
                                                                 folder / "catalogue.json"))
                memory += await measure_memory(
                    Settings(args.database_url, args.memory_scale, args.clips, args.clip_s),
                    root, ids[:args.memory_videos], folder, concurrency=args.memory_concurrency)
    return runs, memory


async def measure_memory(settings: Settings, root: str, ids: list[str], folder: Path, *,
                         concurrency: int) -> list[Memory]:
    """Peak memory of a tenth of ``ids``, then of all of them, rendering off."""
    memory = []
    for count in (max(len(ids) // 10, 1), len(ids)):
        _, usage = await measure(settings, root, ids[:count], folder, mode=OPTIMISED,
                                 concurrency=concurrency, render=False, memory=True)
        assert usage is not None
        memory.append(usage)
        print_memory(usage)
    return memory


def report(runs: list[Run], memory: list[Memory]) -> list[str]:
    """PASS/MISS lines for the targets; returns the missed ones."""
    missed = []
    for result in runs:
        if result.mode == "optimised" and not result.render:
            ok = result.ratio >= TARGET_RATIO
            print(f"  {'PASS' if ok else 'MISS'} C={result.concurrency}: {result.ratio:.2f} of "
                  f"the critical-path bound (target {TARGET_RATIO})")
            if not ok:
                missed.append(f"ratio at C={result.concurrency}")
    rendered = [r for r in runs if r.mode == "optimised" and r.render]
    if rendered:
        best = max(rendered, key=lambda r: r.ffmpeg_ratio)
        ok = best.ffmpeg_ratio >= TARGET_FFMPEG_RATIO
        print(f"  {'PASS' if ok else 'MISS'} best C={best.concurrency}: {best.ffmpeg_ratio:.2f} of "
              f"the ffmpeg bound ({best.ffmpeg_cpu_s:.1f} CPU-s / {best.cores} cores = "
              f"{best.ffmpeg_bound_s:.1f} s; target {TARGET_FFMPEG_RATIO})")
        if not ok:
            missed.append("ffmpeg bound")
    naive = next((r for r in runs if r.mode == "naive"), None)
    best = max((r for r in runs if r.mode == "optimised"), key=lambda r: r.videos_per_min,
               default=None)
    if naive is not None and best is not None:
        print(f"  optimised (C={best.concurrency}) {best.videos_per_min:.1f} videos/min vs naive "
              f"{naive.videos_per_min:.1f}: {best.videos_per_min / naive.videos_per_min:.1f}x")
    print_saturation(runs)
    return missed + report_memory(memory)


def print_saturation(runs: list[Run]) -> None:
    """Where one process stops scaling (:func:`saturation`), and what a video costs it there."""
    saturated = saturation(runs)
    levels = [r.concurrency for r in runs if r.mode == "optimised" and not r.render]
    if saturated is None or len(levels) < 2:
        return
    where = (f"saturates at C={saturated.concurrency}" if saturated.concurrency < max(levels)
             else f"still scales at C={saturated.concurrency}, the highest level measured")
    children_ms = 1000 * saturated.ffmpeg_cpu_s / max(saturated.completed, 1)
    print(f"  one process {where}: {saturated.videos_per_min:.1f} videos/min "
          f"({saturated.ratio:.2f} of the bound), {saturated.cpu_ms_per_video:.1f} CPU ms per "
          f"video ({saturated.cpu_share:.2f} of a core busy), and {children_ms:.1f} ms in the "
          "ffmpeg processes it started")


def report_memory(memory: list[Memory]) -> list[str]:
    """PASS/MISS for :func:`measure_memory`'s two runs; returns the missed targets."""
    if len(memory) != 2:
        return []
    missed = []
    small, large = memory
    growth = large.peak_mb / small.peak_mb if small.peak_mb else math.inf
    ok = growth < 1.5
    print(f"  {'PASS' if ok else 'MISS'} peak memory {small.videos} -> {large.videos} videos: "
          f"{small.peak_mb:.2f} -> {large.peak_mb:.2f} MB ({growth:.2f}x; flat means < 1.5x)")
    if not ok:
        missed.append("memory grows with N")
    third = large.rss_third_growth
    ok = third is not None and third < TARGET_RSS_GROWTH
    shown = "n/a (too short to sample)" if third is None else f"{third:+.1%}"
    print(f"  {'PASS' if ok else 'MISS'} resident memory over {large.videos} videos, last third "
          f"vs first: {shown} (target < {TARGET_RSS_GROWTH:.0%})")
    if not ok:
        missed.append("resident memory grows over the run")
    return missed


def plot(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from opusclip_lib.charts.pipeline import naive_vs_optimised, throughput_vs_concurrency

    frame = pd.DataFrame([r.row() for r in runs])
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 4.5), layout="constrained",
                                         width_ratios=(3, 2))
    throughput_vs_concurrency(frame, ax=left)
    naive_vs_optimised(frame, ax=right)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def _concurrency_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency levels are positive integers")
    return values


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the child process of sandbox_process()
        asyncio.run(_serve_until_stdin_closes(float(argv[1]), Path(argv[2])))
        return 0
    parser = argparse.ArgumentParser(prog="opusclip bench pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=32,
                        help="videos per concurrency level (at least 2 x the level)")
    parser.add_argument("--concurrency", type=_concurrency_list, default=[1, 2, 4, 8, 16])
    parser.add_argument("--scale", type=float, default=1.0, help="latency profile factor")
    parser.add_argument("--render", action="store_true", help="render clips with ffmpeg")
    parser.add_argument("--clips", type=int, default=3, help="highlights per video")
    parser.add_argument("--clip-seconds", dest="clip_s", type=float, default=5.0,
                        help="longest clip rendered (with --render)")
    parser.add_argument("--naive-videos", type=int, default=4,
                        help="videos for the naive pipeline (0: skip it)")
    parser.add_argument("--memory-videos", type=int, default=0,
                        help="peak memory of N/10 and N videos (e.g. 1000; 0: skip)")
    parser.add_argument("--memory-concurrency", type=int, default=16)
    parser.add_argument("--memory-scale", type=float, default=0.05,
                        help="latency factor for the memory runs (they count bytes, not time)")
    parser.add_argument("--database-url", help="default: a fresh SQLite file per run; a server "
                                               "URL gets a scratch schema/database per run")
    parser.add_argument("--json", type=Path, help="write {settings, runs, memory}")
    parser.add_argument("--plot", type=Path, help="write a PNG: throughput vs bound, naive")
    args = parser.parse_args(argv)

    runs, memory = asyncio.run(run(args))
    print()
    missed = report(runs, memory)
    if args.json:
        settings = {key: (str(value) if isinstance(value, Path) else value)
                    for key, value in vars(args).items() if key not in {"json", "plot"}}
        settings["latency_profile_ms"] = LATENCY_PROFILE_MS
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": settings, "runs": [r.row() for r in runs],
                                         "memory": [asdict(m) for m in memory]}, indent=2))
    if args.plot:
        plot(runs, args.plot)
    print(f"\n{len(missed)} target(s) missed" if missed else "\nall targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
