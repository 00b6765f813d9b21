"""``opusclip bench observability``: what switching observability on costs, measured in one run.

*Off* is the code as it runs by default (no tracer, no metrics recorder, logs at WARNING).
*On* is a production worker's setup: tracing on with a batch processor (spans exported to a
sink that drops them, as an OTLP exporter would ship them off the machine) recording one job in
``--sample-ratio`` (parent-based, so a sampled job keeps its whole tree; ``1`` records every
job, the notebooks' setting), a
:class:`~opusclip_lib.observability.MetricsRecorder` feeding Prometheus, JSON log lines at INFO
(to a null stream). Both sides run under a worker's collector settings
(:mod:`opusclip_lib.workflow.collector`). Off and on alternate, ``--rounds`` times, and the
medians are compared (``--parts`` runs a subset):

* **pipeline**: videos/min of a batch against the loopback sandbox (``bench pipeline``'s setup,
  latency profile times ``--scale``), target on >= 0.95x off;
* **api**: requests/s of the YouTube client behind its policy at concurrency ``--concurrency``
  against the sandbox in its own process (``bench api``'s setup; each call runs as a job of its
  own, inside the job scope a worker enters for each job (its span and log context), so the
  sampler decides per call as it would per job), target on >= 0.95x off;
* **logging**: microseconds per JSON line with the job's context, stdlib ``logging`` (what the
  project uses) against structlog: reported, not targeted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from opusclip_lib.api import YouTubeClient
from opusclip_lib.bench._output import save_json
from opusclip_lib.bench.api import CATALOGUE_VIDEO, bench_policy, closed_loop, fresh_ids, sandbox
from opusclip_lib.bench.pipeline import sandbox_process, write_catalogue
from opusclip_lib.db import connect
from opusclip_lib.metrics import Recorder
from opusclip_lib.observability import (
    Metrics,
    MetricsRecorder,
    bound,
    configure_logging,
    configure_tracing,
    shutdown_tracing,
)
from opusclip_lib.observability.instrument import JobScope
from opusclip_lib.sandbox import SANDBOX_KEY
from opusclip_lib.sandbox.endpoints import sandbox_endpoints
from opusclip_lib.workflow import UNLIMITED, DroppingRecorder, WorkflowConfig, open_services
from opusclip_lib.workflow.batch import run_batch
from opusclip_lib.workflow.collector import worker_collector

TARGET = 0.95
PARTS = ("pipeline", "api")
LOG_LINES = 20_000


class DropSpans(SpanExporter):
    """An exporter that accepts every batch and keeps nothing."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@dataclass(frozen=True, slots=True)
class Sample:
    bench: str
    instrumented: bool
    rate: float
    unit: str


@contextmanager
def instrumentation(on: bool, sample_ratio: float) -> Iterator[Recorder | None]:
    """The ``on`` setup for the block (yields its metrics recorder), or nothing changed."""
    if not on:
        yield None
        return
    configure_tracing(DropSpans(), batch=True, service_name="bench",
                      sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    handler = configure_logging(json_lines=True, level=logging.INFO, stream=io.StringIO(),
                                logger="opusclip_lib")
    try:
        yield MetricsRecorder(Metrics())
    finally:
        shutdown_tracing()
        target = logging.getLogger("opusclip_lib")
        target.removeHandler(handler)
        target.setLevel(logging.NOTSET)


async def pipeline_rate(root: str, ids: list[str], folder: Path, name: str, on: bool,
                        concurrency: int, sample_ratio: float) -> float:
    config = WorkflowConfig(work_dir=folder / name, clips=2, render=False, heartbeat_s=10.0,
                            stale_after_s=120.0)
    with instrumentation(on, sample_ratio) as recorder:
        async with (
            connect(f"sqlite:///{folder / f'{name}.db'}",
                    recorder=DroppingRecorder() if recorder is None else recorder) as db,
            open_services(sandbox_endpoints(root), limits=UNLIMITED, recorder=recorder) as services,
        ):
            report = await run_batch(db, services, ids, config, concurrency=concurrency,
                                     recorder=recorder)
    if report.completed != len(ids):
        raise RuntimeError(f"pipeline run {name}: {report.statuses}")
    return report.videos_per_min


async def api_rate(youtube_url: str, concurrency: int, seconds: float, on: bool,
                   sample_ratio: float) -> float:
    ids = fresh_ids()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with instrumentation(on, sample_ratio) as metrics_recorder:
        # not `or`: a MetricsRecorder keeps no events, so its len() is 0 and it is falsy
        recorder = Recorder() if metrics_recorder is None else metrics_recorder
        async with YouTubeClient(SANDBOX_KEY, base_url=youtube_url, limits=limits,
                                 recorder=recorder,
                                 resilience=bench_policy(concurrency, recorder)) as client:
            jobs = itertools.count(1)

            async def send() -> object:
                with job_scope(on, next(jobs)):
                    return await client.videos_page([next(ids), CATALOGUE_VIDEO])

            calls, elapsed = await closed_loop(send, concurrency, seconds)
    return calls / elapsed


def job_scope(on: bool, number: int) -> AbstractContextManager[object]:
    """When on, the block runs as job ``number`` would in a worker: inside the
    :class:`~opusclip_lib.observability.instrument.JobScope` that ``traced_job`` enters (its
    span, sampled or not, and its log context), so every API call makes its client span when
    the job is sampled and binds its provider, as in a worker."""
    if not on:
        return nullcontext()
    return JobScope(BenchJob(number, number, 1, "bench", None))


class BenchJob(NamedTuple):
    """What a job scope reads from a job row (a worker has the row already: a tuple is the
    cheapest stand-in, so the bench charges the scope, not the making of its row)."""

    id: int
    video_id: int
    attempts: int
    stage: str
    payload: object


def logging_costs(lines: int = LOG_LINES) -> dict[str, float]:
    """Microseconds per JSON line with four context fields: stdlib + contextvars vs structlog."""
    import structlog  # the [bench] extra: only this comparison needs it

    stream = io.StringIO()
    handler = configure_logging(json_lines=True, stream=stream, logger="opusclip_bench")
    std = logging.getLogger("opusclip_bench")
    std.propagate = False
    structlog.configure(processors=[structlog.contextvars.merge_contextvars,
                                    structlog.processors.add_log_level,
                                    structlog.processors.TimeStamper(fmt="iso"),
                                    structlog.processors.JSONRenderer()],
                        logger_factory=structlog.WriteLoggerFactory(io.StringIO()),
                        cache_logger_on_first_use=True)
    other = structlog.get_logger("opusclip_bench")
    costs = {}
    try:
        with bound(job_id=1, video_id=2, stage="render", attempt=1):
            structlog.contextvars.bind_contextvars(job_id=1, video_id=2, stage="render",
                                                   attempt=1)
            for name, emit in (("stdlib", lambda n: std.info("clip %s rendered", n)),
                               ("structlog", lambda n: other.info("clip rendered", clip=n))):
                best = float("inf")
                for _ in range(3):
                    started = time.perf_counter()
                    for n in range(lines):
                        emit(n)
                    best = min(best, time.perf_counter() - started)
                costs[name] = best / lines * 1e6
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        std.removeHandler(handler)
        std.propagate = True
    return costs


async def pipeline_samples(args: argparse.Namespace) -> list[Sample]:
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="bench-observability-") as temp:
        folder = Path(temp)
        ids = write_catalogue(folder / "catalogue.json", args.videos * args.rounds * 2)
        with sandbox_process(args.scale, folder / "catalogue.json") as root:
            for number in range(args.rounds):
                for on in (False, True):
                    start = (number * 2 + on) * args.videos
                    rate = await pipeline_rate(root, ids[start:start + args.videos], folder,
                                               f"r{number}-{'on' if on else 'off'}", on,
                                               args.pipeline_concurrency, args.sample_ratio)
                    samples.append(Sample("pipeline", on, rate, "videos/min"))
                    print(f"  pipeline {'on ' if on else 'off'} {rate:10.1f} videos/min",
                          flush=True)
    return samples


async def api_samples(args: argparse.Namespace) -> list[Sample]:
    samples: list[Sample] = []
    async with sandbox("process", args.latency_ms) as youtube_url:
        for _ in range(args.rounds):
            for on in (False, True):
                rate = await api_rate(youtube_url, args.concurrency, args.seconds, on,
                                      args.sample_ratio)
                samples.append(Sample("api", on, rate, "req/s"))
                print(f"  api      {'on ' if on else 'off'} {rate:10.1f} req/s", flush=True)
    return samples


async def run(args: argparse.Namespace) -> list[Sample]:
    samples: list[Sample] = []
    if "pipeline" in args.parts:
        samples += await pipeline_samples(args)
    if "api" in args.parts:
        samples += await api_samples(args)
    return samples


def ratios(samples: list[Sample]) -> dict[str, dict[str, float]]:
    table = {}
    for bench in dict.fromkeys(s.bench for s in samples):
        off = statistics.median(s.rate for s in samples if s.bench == bench and not s.instrumented)
        on = statistics.median(s.rate for s in samples if s.bench == bench and s.instrumented)
        table[bench] = {"off": off, "on": on, "ratio": on / off}
    return table


def report(table: dict[str, dict[str, float]], costs: dict[str, float]) -> list[str]:
    missed = []
    print(f"  {'':6}{'bench':<10}{'off':>10}{'on':>10}{'on/off':>8}  target")
    for bench, row in table.items():
        ok = row["ratio"] >= TARGET
        print(f"  {'PASS' if ok else 'MISS':<6}{bench:<10}{row['off']:>10.1f}{row['on']:>10.1f}"
              f"{row['ratio']:>8.3f}  >= {TARGET}")
        if not ok:
            missed.append(bench)
    print(f"  logging, one JSON line with the job's context: stdlib {costs['stdlib']:.1f} us, "
          f"structlog {costs['structlog']:.1f} us (reported, not targeted)")
    return missed


def plot(table: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    names = list(table)
    ax.bar(names, [table[name]["ratio"] for name in names], color="#4c72b0")
    ax.axhline(TARGET, color="#c44e52", linestyle="--", label=f"target {TARGET}")
    ax.axhline(1.0, color="#888", linewidth=0.8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("instrumented / plain (median)")
    ax.set_title("Throughput with observability on")
    ax.legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="opusclip bench observability", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=16, help="videos per pipeline run")
    parser.add_argument("--pipeline-concurrency", type=int, default=8)
    parser.add_argument("--scale", type=float, default=0.25, help="latency profile factor")
    parser.add_argument("--concurrency", type=int, default=100, help="API calls in flight")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=3.0, help="per API measurement")
    parser.add_argument("--rounds", type=int, default=5, help="off/on pairs per bench")
    parser.add_argument("--sample-ratio", type=float, default=0.1,
                        help="share of jobs traced when on (1: every job)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="which on/off comparisons to run")
    parser.add_argument("--json", type=Path, help="write {settings, samples, ratios, logging}")
    parser.add_argument("--plot", type=Path, help="write a PNG of the on/off ratios")
    args = parser.parse_args(argv)

    print(f"{args.rounds} rounds of off/on, {args.sample_ratio:g} of the jobs traced when on; "
          f"pipeline {args.videos} videos at C="
          f"{args.pipeline_concurrency} (latency x{args.scale:g}); api at C={args.concurrency}, "
          f"{args.latency_ms:g} ms, {args.seconds:g} s each", flush=True)
    with worker_collector():  # both sides run in a worker's process, as a worker sets it up
        samples = asyncio.run(run(args))
    table = ratios(samples)
    costs = logging_costs()
    print()
    missed = report(table, costs)
    if args.json:
        save_json(args, args.json, samples=[asdict(s) for s in samples], ratios=table,
                  logging_us_per_line=costs)
    if args.plot:
        plot(table, args.plot)
    print(f"\n{len(missed)} of {len(table)} target(s) missed" if missed else "\nall targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
