"""``opusclip bench redis_failover``: crash a Redis Cluster primary under load and watch the
caches and the live feed ride it out.

Starts a local cluster (3 primaries, 3 replicas, ``cluster-node-timeout`` 1 s) with the machine's
``redis-server``, then runs one workload against it: a ``RedisCache`` of ``--keys`` keys read one
after another (written back on a miss), and jobs walked through their statuses on a SQLite
database, each change published on the live feed (sharded pub/sub) to a board that also polls
the database. After ``--before`` operations it SIGKILLs the primary that owns the feed's channel;
its replica takes over once the others have declared it failed. The run ends when a full pass
over the keys and ``--after`` more operations went through without degrading.

Reported: the gap (from the kill to the last cache operation that degraded to a miss), the hit
rate before, during and after it, the feed's updates published, refused and delivered, and
whether the board ended equal to the database. Targets: no exception escapes the caches, the
hit rate after is at least 0.9x the one before, and the board matches the database (pub/sub is
at most once: the database poll fills in what the feed lost). ``--no-full-coverage`` sets
``cluster-require-full-coverage no``, so the other shards keep serving during the gap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from opusclip_lib.db import Database, connect, jobs
from opusclip_lib.monitoring import Feed, LiveStatus, job_update, snapshot
from opusclip_lib.monitoring.redis_pubsub import RedisPubSub
from opusclip_lib.redis_client import RedisGuard, RedisServiceError, open_redis
from opusclip_lib.redis_client.local_servers import LocalCluster
from opusclip_lib.resilience import MISS, RedisCache

STATUSES = ("downloading", "transcribing", "analyzing", "rendering", "completed")
PUBLISH_EVERY = 5  # one job change per this many cache operations
POLL_S = 0.5  # how often the board reads the database
PACE_S = 0.002  # between operations: a steady workload, not a flood
TARGET_AFTER_VS_BEFORE = 0.9


@dataclass
class FailoverResult:
    operations: pd.DataFrame
    """One row per cache read: ``t_s`` (since start), ``phase``, ``hit``, ``degraded``,
    ``latency_ms``."""
    killed_at_s: float
    gap_s: float
    victim: int
    promoted: int | None
    full_coverage: bool
    published: int = 0
    publish_failed: int = 0
    delivered: int = 0
    delivered_after_kill: int = 0
    """Updates published after the kill that reached the board through the feed: the
    listener found the channel's new owner."""
    feed_reconnects: int = 0
    board_matches_database: bool = False
    escaped: list[str] = field(default_factory=list)

    def hit_rates(self) -> dict[str, float]:
        rates = self.operations.groupby("phase")["hit"].mean()
        return {phase: float(rates.get(phase, float("nan")))
                for phase in ("before", "during", "after")}

    def summary(self) -> pd.DataFrame:
        """Operations, hit rate and latency per phase."""
        frame = self.operations.groupby("phase", sort=False).agg(
            operations=("hit", "size"), hit_rate=("hit", "mean"),
            degraded=("degraded", "sum"), p50_ms=("latency_ms", "median"),
            p99_ms=("latency_ms", lambda s: s.quantile(0.99)), max_ms=("latency_ms", "max"))
        return frame.reindex([p for p in ("before", "during", "after") if p in frame.index])

    def row(self) -> dict[str, Any]:
        return {"gap_s": self.gap_s, "victim": self.victim, "promoted": self.promoted,
                "full_coverage": self.full_coverage, "hit_rates": self.hit_rates(),
                "published": self.published, "publish_failed": self.publish_failed,
                "delivered": self.delivered, "delivered_after_kill": self.delivered_after_kill,
                "feed_reconnects": self.feed_reconnects,
                "board_matches_database": self.board_matches_database, "escaped": self.escaped}


async def run_drill(cluster: LocalCluster, database: Database, *, keys: int = 200,
                    before: int = 600, after: int = 600, max_s: float = 60.0) -> FailoverResult:
    """Run the workload on ``cluster`` (which must be up) and crash the primary owning the
    feed's channel after ``before`` operations. ``database`` holds the jobs (emptied tables)."""
    channel = f"opusclip_drill_{secrets.token_hex(4)}"
    prefix = f"opusclip:drill:{secrets.token_hex(4)}:"
    rows: list[dict[str, Any]] = []
    escaped: list[str] = []
    board = LiveStatus()
    counts = {"published": 0, "publish_failed": 0, "delivered": 0, "delivered_after_kill": 0}
    killed_wall = float("inf")  # epoch seconds, as the feed stamps ``published_at``
    async with open_redis(cluster.url) as client:
        guard = RedisGuard()
        cache = RedisCache(client, prefix=prefix, guard=guard)
        pipe = RedisPubSub(client, channel)  # sharded: SPUBLISH/SSUBSCRIBE on a cluster
        feed = Feed(pipe, recorder=database.recorder)
        victim = client.get_node_from_key(channel).port  # type: ignore[union-attr]
        replica = cluster.replica_of(victim)
        walker = _JobWalker(database)

        async def follow() -> None:
            async for update in feed.updates():
                counts["delivered"] += 1
                counts["delivered_after_kill"] += update["published_at"] > killed_wall
                board.apply(update)

        async def poll() -> None:
            while True:
                board.apply_all(await snapshot(database))
                await asyncio.sleep(POLL_S)

        for i in range(keys):
            await cache.set(f"k{i}", i)
        async with pipe.listen(feed), asyncio.TaskGroup() as side:
            follower = side.create_task(follow())
            poller = side.create_task(poll())
            started = time.perf_counter()
            killed_at = None
            clean_run = 0
            i = 0
            while clean_run < keys + after:
                if i == before:
                    cluster.kill(victim)
                    killed_at = time.perf_counter() - started
                    killed_wall = time.time()
                key = f"k{i % keys}"
                mark = guard.failures + guard.skipped
                began = time.perf_counter()
                try:
                    value = await cache.get(key)
                    if value is MISS:
                        await cache.set(key, i)
                except Exception as exc:  # noqa: BLE001 - promised never to happen: count it
                    escaped.append(f"{type(exc).__name__}: {exc}")
                    value = MISS
                latency_ms = (time.perf_counter() - began) * 1000
                degraded = guard.failures + guard.skipped > mark
                rows.append({"t_s": began - started, "hit": value is not MISS,
                             "degraded": degraded, "latency_ms": latency_ms})
                if killed_at is not None:
                    clean_run = 0 if degraded else clean_run + 1
                if i % PUBLISH_EVERY == 0:
                    update = await walker.step()
                    counts["published"] += 1
                    try:
                        await feed.publish(update)
                    except RedisServiceError:
                        counts["publish_failed"] += 1
                if time.perf_counter() - started > max_s:
                    raise TimeoutError(f"the caches had not recovered {max_s:g} s into the drill")
                i += 1
                await asyncio.sleep(PACE_S)
            await asyncio.sleep(POLL_S)  # updates still in flight (the poll below has them anyway)
            poller.cancel()
            follower.cancel()
        feed.close()
    board.apply_all(await snapshot(database))  # the final poll
    matches = _board_matches(board, await snapshot(database))
    assert killed_at is not None
    frame = pd.DataFrame(rows)
    degraded_after_kill = frame[(frame["t_s"] >= killed_at) & frame["degraded"]]
    last_degraded = (float(degraded_after_kill["t_s"].max()) if len(degraded_after_kill)
                     else killed_at)
    frame["phase"] = "after"
    frame.loc[frame["t_s"] <= last_degraded, "phase"] = "during"
    frame.loc[frame["t_s"] < killed_at, "phase"] = "before"
    cluster.wait_until_ok()
    return FailoverResult(frame, killed_at, last_degraded - killed_at, victim,
                          replica if cluster.role(replica) == "master" else None,
                          cluster.require_full_coverage, counts["published"],
                          counts["publish_failed"], counts["delivered"],
                          counts["delivered_after_kill"], pipe.reconnects,
                          matches, escaped)


def _board_matches(board: LiveStatus, database_state: list[dict[str, Any]]) -> bool:
    table = board.table()
    return all(job["job_id"] in table.index
               and table.loc[job["job_id"], "status"] == job["status"]
               for job in database_state)


class _JobWalker:
    """Each :meth:`step` makes one committed job change: a new job, or the next status of the
    oldest unfinished one, and returns the update the workflow would publish for it."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.active: list[int] = []

    async def step(self) -> dict[str, Any]:
        if len(self.active) < 3:
            job = await jobs.enqueue(self.database, "drill")
            self.active.append(job.id)
            return job_update(job)
        job_id = self.active[0]
        job = await jobs.get_job(self.database, job_id)
        if job.status == "pending":
            [job] = await jobs.claim(self.database, "drill", kinds=["drill"])
        else:
            job = await jobs.advance(self.database, job_id,
                                     STATUSES[STATUSES.index(job.status) + 1], worker="drill",
                                     stage=job.status, progress=0.5)
        if job.status == "completed":
            self.active.remove(job.id)
        return job_update(job)


def report(result: FailoverResult) -> list[str]:
    missed = []
    rates = result.hit_rates()
    print(f"victim primary :{result.victim} killed at {result.killed_at_s:.2f} s; "
          f"promoted :{result.promoted}; cluster-require-full-coverage "
          f"{'yes' if result.full_coverage else 'no'}")
    print(f"gap (kill -> last degraded cache operation): {result.gap_s:.2f} s")
    print(result.summary().to_string(float_format=lambda x: f"{x:.3f}"))
    print(f"feed: {result.published} updates published, {result.publish_failed} refused during "
          f"the gap, {result.delivered} delivered through the feed "
          f"({result.delivered_after_kill} of them published after the kill); "
          f"{result.feed_reconnects} reconnect(s)")
    checks = [
        ("no exception escaped the caches", not result.escaped),
        (f"hit rate after {rates['after']:.3f} >= {TARGET_AFTER_VS_BEFORE}x before "
         f"{rates['before']:.3f}", rates["after"] >= TARGET_AFTER_VS_BEFORE * rates["before"]),
        ("board (feed + database poll) equals the database", result.board_matches_database),
    ]
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'} {label}")
        if not ok:
            missed.append(label)
    return missed


def plot(result: FailoverResult, path: Path) -> None:
    from opusclip_lib.charts.redis import failover_timeline

    ax = failover_timeline(result.operations, killed_at_s=result.killed_at_s, gap_s=result.gap_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path, dpi=100, bbox_inches="tight")


async def _run(args: argparse.Namespace) -> FailoverResult:
    with tempfile.TemporaryDirectory(prefix="opusclip-failover-") as folder, \
            LocalCluster(require_full_coverage=args.full_coverage) as cluster:
        async with connect(f"sqlite:///{folder}/drill.db") as database:
            return await run_drill(cluster, database, keys=args.keys, before=args.before,
                                   after=args.after)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="opusclip bench redis_failover", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--before", type=int, default=600, help="operations before the kill")
    parser.add_argument("--after", type=int, default=600,
                        help="clean operations after a full clean pass")
    parser.add_argument("--no-full-coverage", dest="full_coverage", action="store_false",
                        help="cluster-require-full-coverage no: other shards serve in the gap")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(_run(args))
    missed = report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": {k: v for k, v in vars(args).items()
                                                      if k not in {"json", "plot"}},
                                         "result": result.row()}, indent=2, default=str))
    if args.plot:
        plot(result, args.plot)
    print(f"\n{len(missed)} target(s) missed" if missed else "\nall targets met")
    return 0
