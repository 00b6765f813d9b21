"""A batch worker as its own process, against the in-process sandbox (the offline stand-in for
the four APIs)::

    python -m opusclip_lib.workflow.worker --database-url sqlite:///work/opusclip.db \\
        --videos opusSample1,R-j_8U_m7aS --concurrency 4 --max-clip-seconds 3

It enqueues the videos (already known ones keep their job), then works the queue until each
of them is finished, reaping jobs of workers that died. Run it again after a crash (SIGKILL,
power loss) and it resumes: finished stages are skipped, half-written files are cleaned up.
SIGTERM or Ctrl-C stops it cleanly: running jobs go back to ``pending``, ffmpeg is stopped.
Prints a JSON summary; exits 0 when every video completed, 1 otherwise. Logs go to stderr as
JSON lines; ``--metrics-port`` serves Prometheus ``/metrics``; ``OTEL_EXPORTER_OTLP_ENDPOINT``
exports traces over OTLP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from opusclip_lib.db import Database, connect
from opusclip_lib.observability import (
    Metrics,
    MetricsRecorder,
    configure_logging,
    configure_tracing,
    shutdown_tracing,
)
from opusclip_lib.observability.sampling import observe_worker
from opusclip_lib.targets import TARGET_HELP, endpoints_for
from opusclip_lib.workflow.artifacts import DirectoryStore
from opusclip_lib.workflow.batch import BatchReport, DroppingRecorder, run_batch
from opusclip_lib.workflow.collector import worker_collector
from opusclip_lib.workflow.config import NAIVE, OPTIMISED, WorkflowConfig
from opusclip_lib.workflow.outage import ride_out
from opusclip_lib.workflow.services import UNLIMITED, Services, open_services
from opusclip_lib.workflow.sources import register, resolve


def _latency(text: str) -> tuple[str, float]:
    endpoint, _, ms = text.partition("=")
    return endpoint.strip(), float(ms)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m opusclip_lib.workflow.worker",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--videos", required=True,
                        type=lambda text: [v.strip() for v in text.split(",") if v.strip()],
                        help="comma-separated sources: YouTube ids or URLs, web pages, files")
    add_workflow_options(parser)
    parser.add_argument("--progress", action="store_true",
                        help="progress on stderr (a bar per stage in a terminal)")
    return parser.parse_args(argv)


def add_workflow_options(parser: argparse.ArgumentParser) -> None:
    """What a worker process is told about the work (also ``opusclip worker``'s options)."""
    parser.add_argument("--target", default="sandbox", help=TARGET_HELP)
    parser.add_argument("--work-dir", type=Path,
                        help="this worker's scratch folder (default: work/workflow)")
    parser.add_argument("--artifacts", type=Path, default=os.environ.get("OPUSCLIP_ARTIFACTS"),
                        help="the shared folder finished artifacts are published into, one for "
                             "all workers (default: $OPUSCLIP_ARTIFACTS, else the work folder)")
    parser.add_argument("--concurrency", type=int, default=4, help="videos in flight")
    parser.add_argument("--clips", type=int, default=3, help="highlights asked per video")
    parser.add_argument("--render", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--captions", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--max-clip-seconds", dest="max_clip_s", type=float)
    parser.add_argument("--naive", action="store_true", help="the naive pipeline")
    parser.add_argument("--response-cache", action=argparse.BooleanOptionalAction, default=True,
                        help="cache the JSON APIs' answers (off: every video pays every call)")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="seconds between beats")
    parser.add_argument("--stale-after", type=float, default=30.0,
                        help="requeue a job whose worker was silent this long")
    parser.add_argument("--retry-backoff", type=float, default=2.0)
    parser.add_argument("--latency", type=_latency, action="append", default=[],
                        metavar="ENDPOINT=MS", help="sandbox latency, e.g. stability=300")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve Prometheus /metrics on this port (0: any free port)")


def config_from(args: argparse.Namespace) -> WorkflowConfig:
    options: dict[str, Any] = {"work_dir": args.work_dir} if args.work_dir else {}
    if args.artifacts:
        options["artifacts"] = DirectoryStore(args.artifacts)
    return WorkflowConfig(mode=NAIVE if args.naive else OPTIMISED, clips=args.clips,
                          render=args.render, captions=args.captions,
                          max_clip_s=args.max_clip_s, heartbeat_s=args.heartbeat,
                          stale_after_s=args.stale_after, retry_backoff_s=args.retry_backoff,
                          **options)


@asynccontextmanager
async def open_worker(args: argparse.Namespace,
                      database_url: str) -> AsyncIterator[tuple[Database, Services]]:
    """The database and the API services of a worker process, observed as ``args`` says.

    A worker that starts while the database restarts waits for it (:func:`ride_out`), as a
    running one does, instead of exiting: its siblings are riding out the same outage.
    """
    endpoints = endpoints_for(args.target, latency_ms=dict(args.latency))
    metrics = Metrics() if args.metrics_port is not None else None
    recorder = DroppingRecorder() if metrics is None else MetricsRecorder(metrics)
    async with AsyncExitStack() as stack:
        db = await ride_out(lambda: stack.enter_async_context(
            connect(database_url, recorder=recorder)))
        services = await stack.enter_async_context(
            open_services(endpoints, cached=not args.naive,
                          limits=replace(UNLIMITED, response_cache=args.response_cache),
                          recorder=None if metrics is None else recorder))
        await stack.enter_async_context(
            observe_worker(db, services.clients(), metrics, args.metrics_port))
        yield db, services


async def work(args: argparse.Namespace) -> BatchReport:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        async with open_worker(args, args.database_url) as (db, services):
            keys = [(await register(db, await resolve(text))).youtube_id for text in args.videos]
            return await run_batch(db, services, keys, config_from(args),
                                   concurrency=args.concurrency, progress=args.progress)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(json_lines=True)  # stderr; the summary stays alone on stdout
    configure_tracing()  # on only with OTEL_EXPORTER_OTLP_ENDPOINT
    try:
        with worker_collector():
            report = asyncio.run(work(args))
    except asyncio.CancelledError:  # SIGTERM: running jobs were handed back to the queue
        print(json.dumps({"stopped": True}))
        return 143
    finally:
        shutdown_tracing()
    print(json.dumps({"mode": report.mode, "videos": report.videos, "seconds": report.seconds,
                      "statuses": report.statuses, "videos_per_min": report.videos_per_min}))
    return 0 if report.completed == report.videos else 1


if __name__ == "__main__":
    raise SystemExit(main())
