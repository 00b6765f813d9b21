"""``opusclip bench api``: requests per second of the project's API client against raw httpx
and raw aiohttp, and what a cache hit costs.

The server is the sandbox (``python -m opusclip_lib.sandbox --unlimited``) on loopback, every
limit off, each call answering after ``--latency-ms`` (50 ms). By default it runs in its own
process: in a thread of the client's process it shares the GIL, and at concurrency 100 the
server's CPU then caps every stack alike (``--server thread`` shows it). Each stack sends
``videos.list`` for a fresh unknown id plus one catalogue video (so every call is a cache miss
and parses one real video) for ``--seconds`` at each concurrency, closed loop:

* ``client``: :class:`~opusclip_lib.api.YouTubeClient` behind its resilience policy (cache
  look-up and store, single-flight, breaker, retry, concurrency slot, quota budget; limits set
  higher than any run reaches) with a recorder, over its default transport (aiohttp);
* ``aiohttp``: a raw ``aiohttp.ClientSession``, the reference;
* ``httpx-aiohttp``: ``httpx.AsyncClient`` over ``httpx_aiohttp.AiohttpTransport``;
* ``httpx``: ``httpx.AsyncClient`` with its default transport (httpcore);
* ``client/httpx-aiohttp``, ``client/httpx`` (only when named in ``--stacks``): the client over
  its other transports (``transport=`` in :mod:`opusclip_lib.api.transport`), which is how that
  module's default was chosen;
* ``client/bare`` (only when named): the client with no resilience policy and no recorder, so
  the difference to ``client`` is what those cost, and the difference to ``aiohttp`` what the
  client itself adds (building the request, the ``httpx.Response``, the pydantic models);
* ``aiohttp/models`` (only when named): raw aiohttp validating each body into the client's
  pydantic models instead of decoding it to dicts: the floor for any client that returns
  models, which the target at 1 ms has to leave room for.

Each row also gives this process's CPU time per request: on a shared machine the rates move
with everyone else's load while the CPU cost moves less, and one event loop cannot go faster
than one request per CPU cost.

Rounds are interleaved (every stack and concurrency once per round) and the median reported,
with its ratio to the ideal (``concurrency / latency``) and to raw aiohttp. Then the cache: the
median time of a cache hit and of an uncached call through the same client, against a second
sandbox with no latency. The raw stacks decode the JSON they get, as any caller would (the
client validates it into pydantic models), so no stack is charged for work another skips.
Targets at concurrency 100: with 50 ms latency the client reaches 0.8 of the ideal and 0.9 of
raw aiohttp; with 1 ms latency, where the client's CPU bounds every stack, 0.7 of raw aiohttp
(``--latency-ms 1 --concurrency 100``); a hit costs under 5% of an uncached call. Other
latencies print the table with no throughput target.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from opusclip_lib.api import YouTubeClient
from opusclip_lib.api.models import VideoListResponse
from opusclip_lib.api.transport import check_transport_name
from opusclip_lib.local_server import free_port, listening
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import QuotaBudget, Resilience, defaults_for
from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, serve

DEFAULT_STACKS = ("client", "aiohttp", "httpx-aiohttp", "httpx")
STACKS = (*DEFAULT_STACKS, "client/httpx-aiohttp", "client/httpx", "client/bare",
          "aiohttp/models")
REFERENCE = "aiohttp"
CATALOGUE_VIDEO = "opusSample1"
PARTS = "snippet,contentDetails,statistics"
TARGET_CACHE, TARGET_CONCURRENCY = 0.05, 100
#: Server latency_s (ms) -> the client's targets at TARGET_CONCURRENCY: (row key, name, minimum).
TARGETS_BY_LATENCY_MS: dict[float, tuple[tuple[str, str, float], ...]] = {
    50.0: (("x_ideal", "x ideal", 0.8), ("x_aiohttp", "x raw aiohttp", 0.9)),
    1.0: (("x_aiohttp", "x raw aiohttp", 0.7),),  # CPU-bound: the client's cost per call
}
RAW_TIMEOUT_S = 120.0  # httpcore at concurrency 100 takes seconds per call: slow is not failed

Send = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Run:
    """One stack at one concurrency: ``requests`` completed in ``seconds``, using ``cpu_s`` of
    this process's CPU time (user and system, every thread)."""

    stack: str
    concurrency: int
    requests: int
    seconds: float
    cpu_s: float

    @property
    def req_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6


def fresh_ids() -> Iterator[str]:
    """Valid video ids the sample catalogue does not hold (``fresh000000``, ...): each call a
    new cache key; the sandbox answers them with no item, as YouTube does."""
    return (f"fresh{n % 1_000_000:06d}" for n in itertools.count())


def bench_policy(concurrency: int, recorder: Recorder | None = None) -> Resilience:
    """YouTube's default policy with limits no run reaches: it measures the layer's cost, not
    its waits (a 10-slot bound or a 10,000-unit day would make every stack look alike)."""
    return defaults_for("youtube", recorder=recorder, limiter=QuotaBudget(units_per_day=1e12),
                        concurrency=concurrency)


@asynccontextmanager
async def open_stack(stack: str, youtube_url: str, concurrency: int) -> AsyncIterator[Send]:
    """A ``send()`` making one ``videos.list`` call through ``stack``, its pool sized for
    ``concurrency``; everything it opened is closed on exit."""
    ids = fresh_ids()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if stack == "client" or stack.startswith("client/"):
        name = stack.partition("/")[2]
        bare = name == "bare"  # no policy and no recorder: what those cost, by difference
        choice = check_transport_name(name) if name and not bare else None
        recorder = None if bare else Recorder()
        async with YouTubeClient(SANDBOX_KEY, base_url=youtube_url, limits=limits,
                                 transport=choice, recorder=recorder,
                                 resilience=None if bare else bench_policy(concurrency, recorder),
                                 ) as client:
            yield lambda: client.videos_page([next(ids), CATALOGUE_VIDEO])
        return

    def url() -> str:
        return (f"{youtube_url}/videos?part={PARTS}&id={next(ids)},{CATALOGUE_VIDEO}"
                f"&key={SANDBOX_KEY}")

    if stack in ("aiohttp", "aiohttp/models"):
        into_models = stack == "aiohttp/models"
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def via_aiohttp() -> None:
                async with session.get(url()) as response:
                    response.raise_for_status()
                    if into_models:
                        VideoListResponse.model_validate_json(await response.read())
                    else:
                        await response.json()
            yield via_aiohttp
        return
    if stack not in ("httpx", "httpx-aiohttp"):
        raise ValueError(f"unknown stack {stack!r}; expected one of {', '.join(STACKS)}")
    transport = (AiohttpTransport(limits=limits) if stack == "httpx-aiohttp"
                 else httpx.AsyncHTTPTransport(limits=limits))
    async with httpx.AsyncClient(transport=transport, timeout=RAW_TIMEOUT_S) as http:
        async def via_httpx() -> None:
            (await http.get(url())).raise_for_status().json()
        yield via_httpx


async def closed_loop(send: Send, concurrency: int, seconds: float) -> tuple[int, float]:
    """``concurrency`` workers, each sending its next call as soon as the last one answered,
    until ``seconds`` have passed (at least one counted call each); returns (calls completed,
    seconds until the last answer).

    One call per worker first, not counted, so connections are open before the clock starts.
    """
    async with asyncio.TaskGroup() as warm_up:
        for _ in range(concurrency):
            warm_up.create_task(send())
    completed = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal completed
        while True:  # at least one call each, however late a busy loop starts the worker
            await send()
            completed += 1
            if time.perf_counter() >= deadline:
                return

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return completed, time.perf_counter() - started


async def measure(stack: str, youtube_url: str, concurrency: int, seconds: float) -> Run:
    async with open_stack(stack, youtube_url, concurrency) as send:
        cpu = time.process_time()
        requests, elapsed = await closed_loop(send, concurrency, seconds)
        cpu_s = time.process_time() - cpu
    return Run(stack, concurrency, requests, elapsed, cpu_s)


async def timed_calls(send: Send, calls: int) -> float:
    """Median seconds of ``calls`` calls made one after another."""
    durations = []
    for _ in range(calls):
        start = time.perf_counter()
        await send()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


async def cache_costs(youtube_url: str, calls: int) -> tuple[float, float]:
    """Median seconds of an uncached call and of a cache hit, through one client and policy."""
    ids = fresh_ids()
    policy = bench_policy(1)
    async with YouTubeClient(SANDBOX_KEY, base_url=youtube_url, recorder=Recorder(),
                             resilience=policy) as client:
        await timed_calls(lambda: client.videos_page([next(ids), CATALOGUE_VIDEO]), 20)  # warm
        uncached = await timed_calls(
            lambda: client.videos_page([next(ids), CATALOGUE_VIDEO]), calls)
        hot = [next(ids), CATALOGUE_VIDEO]
        hits_before = policy.stats.hits
        hit = await timed_calls(lambda: client.videos_page(hot), calls + 1)
    if policy.stats.hits - hits_before != calls:  # the first of the calls + 1 is the miss
        raise RuntimeError("the cache did not answer the repeated calls")
    return uncached, hit


# --- where the sandbox runs -----------------------------------------------------------------

@contextmanager
def sandbox_process(latency_ms: float, *, start_timeout_s: float = 30.0,
                    options: Sequence[str] = ()) -> Iterator[str]:
    """``python -m opusclip_lib.sandbox --unlimited [options]`` on a free port; yields its root
    URL once it accepts connections, and stops it on exit."""
    port = free_port()
    command = [sys.executable, "-m", "opusclip_lib.sandbox", "--unlimited", "--port", str(port),
               "--latency-ms", str(latency_ms), *options]
    with listening(command, port, name="sandbox process",
                   start_timeout_s=start_timeout_s) as root:
        yield root


@asynccontextmanager
async def sandbox(mode: str, latency_ms: float) -> AsyncIterator[str]:
    """The sandbox's YouTube base URL: in its own process, or in a thread of this one."""
    if mode == "process":
        with sandbox_process(latency_ms) as root:
            yield f"{root}/youtube/v3"
        return
    config = SandboxConfig.unlimited()
    config.set_latency("youtube.videos.list", latency_ms)
    async with serve(config) as urls:
        yield urls.youtube


# --- the run ----------------------------------------------------------------------------------

def medians(runs: list[Run]) -> list[Run]:
    """One run per (stack, concurrency): the median rate's run (its requests and seconds)."""
    grouped: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        grouped.setdefault((run.stack, run.concurrency), []).append(run)
    return [sorted(group, key=lambda r: r.req_per_s)[len(group) // 2]
            for group in grouped.values()]


def rows(runs: list[Run], latency_s: float) -> list[dict[str, Any]]:
    """The table: rate, ratio to the ideal and to raw aiohttp at the same concurrency (no
    ideal with no latency_s: the CPU is then the only bound)."""
    reference = {r.concurrency: r.req_per_s for r in runs if r.stack == REFERENCE}
    table = []
    for run in runs:
        ideal = run.concurrency / latency_s if latency_s > 0 else None
        versus = reference.get(run.concurrency)
        table.append(asdict(run) | {
            "req_per_s": run.req_per_s, "cpu_us_per_request": run.cpu_us_per_request,
            "ideal_req_per_s": ideal,
            "x_ideal": run.req_per_s / ideal if ideal else None,
            "x_aiohttp": run.req_per_s / versus if versus else None})
    return table


def _cell(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def print_table(table: list[dict[str, Any]]) -> None:
    print(f"  {'stack':<22}{'C':>5}{'requests':>10}{'req/s':>9}{'ideal':>8}{'x ideal':>9}"
          f"{'x aiohttp':>11}{'CPU us/req':>12}")
    for row in sorted(table, key=lambda r: (r["concurrency"], STACKS.index(r["stack"]))):
        print(f"  {row['stack']:<22}{row['concurrency']:>5}{row['requests']:>10}"
              f"{row['req_per_s']:>9.0f}{_cell(row['ideal_req_per_s'], '.0f'):>8}"
              f"{_cell(row['x_ideal'], '.2f'):>9}{_cell(row['x_aiohttp'], '.2f'):>11}"
              f"{row['cpu_us_per_request']:>12.0f}", flush=True)


async def run(args: argparse.Namespace) -> tuple[list[Run], list[Run], tuple[float, float]]:
    """All rounds of all stacks (the raw runs and their medians), then the cache costs."""
    latency_s = args.latency_ms / 1000
    runs: list[Run] = []
    async with sandbox(args.server, args.latency_ms) as youtube_url:
        for number in range(1, args.rounds + 1):
            for concurrency in args.concurrency:
                runs += [await measure(stack, youtube_url, concurrency, args.seconds)
                         for stack in args.stacks]  # one after another, as they are timed
            print(f"round {number}/{args.rounds} done", flush=True)
    middle = medians(runs)
    print_table(rows(middle, latency_s))
    async with sandbox(args.server, 0) as youtube_url:
        costs = await cache_costs(youtube_url, args.cache_calls)
    return runs, middle, costs


def report(table: list[dict[str, Any]], costs: tuple[float, float],
           latency_ms: float) -> list[str]:
    """PASS/MISS lines for the targets set at this latency; returns the missed ones."""
    missed = []
    client = next((r for r in table if r["stack"] == "client"
                   and r["concurrency"] == TARGET_CONCURRENCY), None)
    targets = TARGETS_BY_LATENCY_MS.get(latency_ms, ())
    if client is not None and not targets:
        print(f"  no throughput target at {latency_ms:g} ms (targets at "
              f"{' and '.join(f'{ms:g}' for ms in TARGETS_BY_LATENCY_MS)} ms)")
    for key, name, target in targets if client is not None else ():
        value = client[key]
        if value is None:  # the reference stack was not run
            continue
        ok = value >= target
        print(f"  {'PASS' if ok else 'MISS'} client at C={TARGET_CONCURRENCY}, {latency_ms:g} ms: "
              f"{value:.2f} {name} (target >= {target})")
        if not ok:
            missed.append(f"client {name} at {latency_ms:g} ms")
    uncached, hit = costs
    ratio = hit / uncached
    ok = ratio < TARGET_CACHE
    print(f"  {'PASS' if ok else 'MISS'} cache hit {hit * 1e6:.0f} us vs uncached call "
          f"{uncached * 1e6:.0f} us (no latency): {ratio:.1%} (target < {TARGET_CACHE:.0%})")
    if not ok:
        missed.append("cache hit cost")
    return missed


def plot(table: list[dict[str, Any]], latency_s: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from opusclip_lib.charts.api import throughput_vs_concurrency

    ax = throughput_vs_concurrency(pd.DataFrame(table), latency_s=latency_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(ax.figure)


def _levels(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency levels are positive integers")
    return values


def _stacks(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(STACKS)
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"stacks are some of {', '.join(STACKS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="opusclip bench api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=_levels, default=[1, 10, 50, 100])
    parser.add_argument("--stacks", type=_stacks, default=list(DEFAULT_STACKS),
                        help=f"some of {', '.join(STACKS)} (default: the first four)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="closed-loop time per stack, concurrency and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache-calls", type=int, default=500,
                        help="timed calls for each side of the cache comparison")
    parser.add_argument("--server", choices=["process", "thread"], default="process",
                        help="the sandbox in its own process, or in a thread of this one")
    parser.add_argument("--json", type=Path, help="write {settings, runs, medians, cache}")
    parser.add_argument("--plot", type=Path, help="write a PNG: req/s vs concurrency")
    args = parser.parse_args(argv)

    latency_s = args.latency_ms / 1000
    print(f"sandbox in a {args.server}, {args.latency_ms:g} ms latency, {args.seconds:g} s per "
          f"measurement, median of {args.rounds} rounds", flush=True)
    runs, middle, costs = asyncio.run(run(args))
    table = rows(middle, latency_s)
    print()
    missed = report(table, costs, args.latency_ms)
    if args.json:
        settings = {key: (str(value) if isinstance(value, Path) else value)
                    for key, value in vars(args).items() if key not in {"json", "plot"}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "settings": settings, "medians": table,
            "runs": [asdict(r) | {"req_per_s": r.req_per_s,
                                  "cpu_us_per_request": r.cpu_us_per_request} for r in runs],
            "cache": {"uncached_s": costs[0], "hit_s": costs[1], "ratio": costs[1] / costs[0]},
        }, indent=2))
    if args.plot:
        plot(table, latency_s, args.plot)
    print(f"\n{len(missed)} target(s) missed" if missed else "\nall targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
