"""``opusclip worker``, ``opusclip enqueue`` and ``opusclip status``.

    opusclip enqueue --database URL [--broker URL] SOURCE...
    opusclip worker --database URL [--broker URL] --processes N [--target ...]
    opusclip status --database URL [--json]

``--broker`` defaults to ``OPUSCLIP_BROKER_URL`` and ``--database`` to
``OPUSCLIP_DATABASE_URL``. Without a broker, ``enqueue`` writes the job alone and workers poll
the database, as ``python -m opusclip_lib.workflow.worker`` does. With one, ``enqueue`` writes
the job and its wake-up in one transaction and relays the wake-up; a broker that is down leaves
it in the outbox (the worker's relay sends it later) and says so, naming the broker.

Workers on several hosts share the database, the broker and the artifact store (``--artifacts
DIR`` or ``OPUSCLIP_ARTIFACTS``: where every stage publishes what it made before it commits);
each keeps its own ``--work-dir`` as scratch.

``worker --processes N`` starts N worker processes and waits for them; SIGTERM (or Ctrl-C) is
passed on, and each drains: running jobs get ``--drain-deadline`` seconds to finish, then go
back to ``pending``. A SIGKILLed worker's jobs come back through the lease (``--stale-after``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict
from functools import partial
from typing import Any

from opusclip_lib.db import (
    Database,
    DatabaseError,
    connect,
    every,
    jobs,
    outbox,
    workers,
)
from opusclip_lib.distributed.brokers import (
    BrokerSettings,
    deliveries,
    open_broker,
    redact,
    shutdown_quietly,
)
from opusclip_lib.distributed.dispatch import Dispatcher, DispatchStats
from opusclip_lib.distributed.errors import BrokerUnavailableError
from opusclip_lib.distributed.relay import relay_once
from opusclip_lib.observability import carrier, configure_logging
from opusclip_lib.pipelines import background
from opusclip_lib.workflow.collector import worker_collector
from opusclip_lib.workflow.config import KIND, WorkflowConfig
from opusclip_lib.workflow.engine import Engine, worker_name
from opusclip_lib.workflow.sources import register, resolve
from opusclip_lib.workflow.worker import add_workflow_options, config_from, open_worker

logger = logging.getLogger(__name__)
COMMANDS = ("worker", "enqueue", "status")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", default=os.environ.get("OPUSCLIP_DATABASE_URL"),
                        required="OPUSCLIP_DATABASE_URL" not in os.environ,
                        help="database URL (default: $OPUSCLIP_DATABASE_URL)")
    parser.add_argument("--broker", default=os.environ.get("OPUSCLIP_BROKER_URL") or None,
                        help="redis://, amqp:// or nats:// (default: $OPUSCLIP_BROKER_URL; "
                             "none: workers poll the database)")
    parser.add_argument("--prefix", default=os.environ.get("OPUSCLIP_BROKER_PREFIX", "opusclip"),
                        help="queue/stream name prefix on the broker")
    parser.add_argument("--ack-deadline", type=float, default=30.0,
                        help="seconds the broker waits for an ack before redelivering")


def parse_args(command: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"opusclip {command}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(parser)
    if command == "enqueue":
        parser.add_argument("sources", nargs="+", metavar="SOURCE")
    elif command == "status":
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--alive-within", type=float, default=30.0,
                            help="a worker seen this recently counts as alive")
    else:
        add_workflow_options(parser)
        parser.add_argument("--processes", type=int, default=1)
        parser.add_argument("--sweep", type=float, default=5.0,
                            help="seconds between database sweeps when a broker wakes workers")
        parser.add_argument("--drain-deadline", type=float, default=30.0,
                            help="on SIGTERM, seconds running jobs may take to finish")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> BrokerSettings | None:
    if not args.broker:
        return None
    return BrokerSettings(args.broker, prefix=args.prefix, ack_deadline_s=args.ack_deadline)


# --- enqueue ------------------------------------------------------------------------------------

async def enqueue(db: Database, sources: list[str], settings: BrokerSettings | None, *,
                  config: WorkflowConfig | None = None) -> dict[str, Any]:
    """A job per source (known sources keep theirs); with a broker, its wake-up too."""
    max_attempts = (config or WorkflowConfig()).max_attempts
    job_ids = []
    for text in sources:
        video = await register(db, await resolve(text))
        add = outbox.enqueue if settings is not None else jobs.enqueue
        job = await add(db, KIND, video_id=video.id,
                        payload={"youtube_id": video.youtube_id, **carrier()},
                        idempotency_key=f"{KIND}:{video.youtube_id}", max_attempts=max_attempts)
        job_ids.append(job.id)
    report: dict[str, Any] = {"jobs": job_ids}
    if settings is not None:
        try:
            async with open_broker(settings) as broker:
                report["relayed"] = await relay_once(db, broker, settings)
        except BrokerUnavailableError as error:
            report["broker_error"] = str(error)
        report["outbox_unsent"] = await outbox.unsent_count(db)
    return report


# --- status -------------------------------------------------------------------------------------

async def status(db: Database, *, alive_within_s: float) -> dict[str, Any]:
    """Queue depth, oldest pending job's age, workers alive, unsent wake-ups, jobs by status."""
    summary = await workers.summary(db, alive_within_s=alive_within_s)
    return {**asdict(summary), "outbox_unsent": await outbox.unsent_count(db),
            "by_status": await jobs.queue_counts(db)}


# --- worker -------------------------------------------------------------------------------------

@asynccontextmanager
async def liveness(db: Database, name: str, broker: str | None,
                   every_s: float) -> AsyncIterator[None]:
    """Keep ``name``'s row in ``workers`` fresh while the block runs; remove it at the end."""

    # Liveness is advisory (the job lease is the truth): a beat lost to the database is skipped.
    beat = every(every_s, lambda: workers.seen(db, name, broker=broker), skip=DatabaseError,
                 skipped="worker liveness not recorded")
    try:
        async with background(beat, name=f"liveness {name}"):
            yield
    finally:
        try:
            await workers.gone(db, name)
        except DatabaseError as error:  # the row ages out of "alive" on its own
            logger.warning("worker row not removed: %r", error)


async def serve(db: Database, engine: Engine, settings: BrokerSettings | None, *,
                concurrency: int, sweep_s: float, drain_s: float,
                stop: asyncio.Event) -> DispatchStats:
    """One worker process: woken by the broker (if any), sweeping the database, until ``stop``."""
    config = engine.config
    reap_s = max(config.stale_after_s / 2, config.poll_s)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            liveness(db, engine.worker, settings.kind if settings else None, config.heartbeat_s))
        if settings is None:
            dispatcher = Dispatcher(engine, concurrency=concurrency, sweep_s=config.poll_s,
                                    reap_s=reap_s, drain_s=drain_s)
            return await dispatcher.run(None, stop)
        broker = await stack.enter_async_context(open_broker(settings, consumer=True))

        async def relay() -> None:
            try:
                await relay_once(db, broker, settings)
            except BrokerUnavailableError as error:
                logger.warning("%s; wake-ups wait in the outbox", error)

        dispatcher = Dispatcher(engine, concurrency=concurrency, sweep_s=sweep_s, reap_s=reap_s,
                                drain_s=drain_s, periodic=relay)
        return await dispatcher.run(deliveries(broker), stop,
                                    close=partial(shutdown_quietly, broker))
    raise AssertionError("unreachable")  # pragma: no cover


async def work(args: argparse.Namespace) -> DispatchStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with open_worker(args, args.database) as (db, services):
            engine = Engine(db, services, config_from(args), worker=worker_name())
            return await serve(db, engine, settings_from(args), concurrency=args.concurrency,
                               sweep_s=args.sweep, drain_s=args.drain_deadline, stop=stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def supervise(argv: list[str], processes: int) -> int:
    """Run ``processes`` single-process workers; pass SIGTERM/SIGINT on; the worst exit code.

    A child can meet the passed-on signal before it installs its handler (still importing) or
    after it removed it (closing down). Either way it holds no claimed job, so dying of that
    signal is a clean stop, not a failure (:func:`worst_exit_code`).
    """
    child_argv = _without_option(argv, "--processes")
    children = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "opusclip_lib.distributed.command", "worker", *child_argv,
        "--processes=1") for _ in range(processes)]
    loop = asyncio.get_running_loop()
    forwarded: set[int] = set()

    def forward(signum: int) -> None:
        forwarded.add(signum)
        for child in children:
            if child.returncode is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, forward, signum)
    try:
        codes = await asyncio.gather(*(child.wait() for child in children))
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return worst_exit_code(codes, forwarded)


def worst_exit_code(codes: list[int], passed_on: set[int]) -> int:
    """The code furthest from 0, where death by a signal that was passed on counts as 0."""
    return max((0 if -code in passed_on else code for code in codes), key=abs)


def _without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` less ``option VALUE`` and ``option=VALUE``."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(f"{option}="):
            kept.append(arg)
    return kept


async def _with_db(args: argparse.Namespace, command: str) -> dict[str, Any]:
    async with connect(args.database) as db:
        if command == "enqueue":
            return await enqueue(db, args.sources, settings_from(args))
        return await status(db, alive_within_s=args.alive_within)


def main(command: str, argv: list[str]) -> int:
    args = parse_args(command, argv)
    configure_logging(json_lines=True)  # stderr; results stay alone on stdout
    if command == "worker":
        if args.processes > 1:
            return asyncio.run(supervise(argv, args.processes))
        with worker_collector():
            stats = asyncio.run(work(args))
        line = json.dumps({"worker": "stopped", "broker": redact(args.broker or "") or None,
                           **asdict(stats) | {"finished": len(stats.finished)}})
        # One write: the sibling processes of ``--processes N`` share this stdout.
        sys.stdout.write(f"{line}\n")
        sys.stdout.flush()
        return 0
    report = asyncio.run(_with_db(args, command))
    if command == "status" and not args.json:
        for key, value in report.items():
            print(f"{key:>22}: {value}")
    else:
        print(json.dumps(report, default=str))
    if "broker_error" in report:
        print(f"opusclip enqueue: {report['broker_error']}; {report['outbox_unsent']} wake-up(s) "
              "wait in the outbox, the jobs are stored", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2:]))
