"""``opusclip bench stream``: does the streaming client keep up with the tokens it is sent?

The sandbox (``python -m opusclip_lib.sandbox --unlimited --token-ms T``, its own process by
default) streams chat completions at a fixed rate, one token every ``--token-ms``; the client
(:meth:`~opusclip_lib.api.OpenAIClient.stream_chat`, SSE decoding and typed chunks included)
keeps ``--concurrency`` streams open for ``--seconds``, closed loop: each stream that ends is
followed by a new one. Per stream it measures the tokens per second it received (between its
first and last token), and every ``--sample-s`` the process's resident memory.

Targets at concurrency 50: the median stream reaches at least 0.9 of the configured token rate
(a client that parses too slowly falls behind and its streams stretch), and memory stays flat:
the median resident size over the last third of the run is within 10% of the first third's
(a leak of a buffer, a chunk or a task per stream would grow it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from opusclip_lib.api import OpenAIClient
from opusclip_lib.bench.api import sandbox_process
from opusclip_lib.sandbox import Latency, SandboxConfig, serve

TARGET_RATE, TARGET_MEMORY_GROWTH, TARGET_CONCURRENCY = 0.9, 0.10, 50
MESSAGES = [{"role": "user", "content": "Explain how an event loop runs many streams at once"}]
PAGE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class StreamRun:
    """One completed stream: its tokens, time to first token and received rate."""

    tokens: int
    ttft_s: float
    seconds: float
    tokens_per_s: float


def resident_bytes() -> int:
    """This process's resident memory now (Linux ``/proc``; 0 where it is not available)."""
    try:
        pages = Path("/proc/self/statm").read_text().split()[1]
    except OSError:
        return 0
    return int(pages) * PAGE_BYTES


@asynccontextmanager
async def openai_url(mode: str, token_ms: float) -> AsyncIterator[str]:
    if mode == "process":
        with sandbox_process(0, options=("--token-ms", str(token_ms))) as root:
            yield f"{root}/openai/v1"
        return
    config = SandboxConfig.unlimited()
    config.openai.token_latency = Latency.fixed(token_ms)
    async with serve(config) as urls:
        yield urls.openai


async def one_stream(ai: OpenAIClient) -> StreamRun | None:
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    async with ai.stream_chat(MESSAGES, include_usage=False) as stream:
        async for chunk in stream:
            if chunk.content:
                last = time.perf_counter()
                first = first or last
                tokens += 1
    if tokens < 2:
        return None
    return StreamRun(tokens, first - started, last - started, (tokens - 1) / (last - first))


async def run(args: argparse.Namespace) -> tuple[list[StreamRun], list[tuple[float, int]]]:
    runs: list[StreamRun] = []
    samples: list[tuple[float, int]] = []
    limits = httpx.Limits(max_connections=args.concurrency,
                          max_keepalive_connections=args.concurrency, keepalive_expiry=30)
    async with openai_url(args.server, args.token_ms) as url, OpenAIClient(
            "sk-bench", base_url=url, limits=limits) as ai:
        await one_stream(ai)  # warm-up: connection, imports, caches
        origin = time.perf_counter()
        stop_at = origin + args.seconds

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                finished = await one_stream(ai)
                if finished is not None:
                    runs.append(finished)

        async def sampler(done: asyncio.Event) -> None:
            while not done.is_set():
                samples.append((time.perf_counter() - origin, resident_bytes()))
                try:
                    async with asyncio.timeout(args.sample_s):
                        await done.wait()
                except TimeoutError:
                    pass

        done = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(sampler(done))
            async with asyncio.TaskGroup() as workers:
                for _ in range(args.concurrency):
                    workers.create_task(worker())
            done.set()
    return runs, samples


def memory_growth(samples: list[tuple[float, int]]) -> float | None:
    """Median resident size of the last third over the first third's, minus one."""
    sizes = [size for _, size in samples if size]
    if len(sizes) < 3:
        return None
    third = len(sizes) // 3
    return statistics.median(sizes[-third:]) / statistics.median(sizes[:third]) - 1


def report(runs: list[StreamRun], samples: list[tuple[float, int]],
           args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    configured = 1000 / args.token_ms
    rates = [r.tokens_per_s for r in runs]
    median_rate = statistics.median(rates) if rates else 0.0
    growth = memory_growth(samples)
    rows = [
        {"check": f"median stream tokens/s / configured ({configured:g}/s)",
         "value": median_rate / configured, "target": f">= {TARGET_RATE}",
         "ok": median_rate / configured >= TARGET_RATE},
        {"check": "resident memory growth, last third vs first",
         "value": growth, "target": f"<= {TARGET_MEMORY_GROWTH:.0%}",
         "ok": growth is not None and growth <= TARGET_MEMORY_GROWTH},
    ]
    print(f"  {len(runs)} streams, {sum(r.tokens for r in runs)} tokens at concurrency "
          f"{args.concurrency}; per-stream tokens/s p10 "
          f"{_quantile(rates, 0.1):.1f}, median {median_rate:.1f}, "
          f"p90 {_quantile(rates, 0.9):.1f}; "
          f"median time to first token {statistics.median(r.ttft_s for r in runs) * 1000:.1f} ms"
          if runs else "  no stream finished")
    missed = []
    for row in rows:
        value = "n/a" if row["value"] is None else f"{row['value']:.3f}"
        print(f"  {'PASS' if row['ok'] else 'MISS'} {row['check']}: {value} "
              f"(target {row['target']})")
        if not row["ok"]:
            missed.append(row["check"])
    if args.concurrency != TARGET_CONCURRENCY:
        print(f"  (the targets are set for concurrency {TARGET_CONCURRENCY}; this run used "
              f"{args.concurrency})")
    return rows, missed


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def plot(runs: list[StreamRun], samples: list[tuple[float, int]], configured: float,
         path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from opusclip_lib.charts.streaming import stream_rates

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 3.5))
    stream_rates(pd.DataFrame([asdict(r) for r in runs]), configured=configured, ax=left)
    mebibytes = [size / 2**20 for _, size in samples]
    right.plot([t for t, _ in samples], mebibytes)
    right.set_xlabel("seconds into the run")
    right.set_ylabel("resident memory, MiB")
    right.set_ylim(0, max(mebibytes, default=1) * 1.25 or 1)  # from zero: flat looks flat
    right.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="opusclip bench stream", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=TARGET_CONCURRENCY)
    parser.add_argument("--token-ms", type=float, default=20.0,
                        help="the sandbox's wait before each token (rate = 1000 / token-ms)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sample-s", type=float, default=0.25,
                        help="how often resident memory is sampled")
    parser.add_argument("--server", choices=["process", "thread"], default="process")
    parser.add_argument("--json", type=Path, help="write {settings, checks, streams, memory}")
    parser.add_argument("--plot", type=Path, help="write a PNG: rates and memory over time")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.token_ms <= 0 or args.seconds <= 0:
        parser.error("--concurrency, --token-ms and --seconds must be positive")

    print(f"sandbox in a {args.server}, one token every {args.token_ms:g} ms, "
          f"{args.concurrency} streams for {args.seconds:g} s", flush=True)
    runs, samples = asyncio.run(run(args))
    rows, missed = report(runs, samples, args)
    if args.json:
        settings = {key: (str(value) if isinstance(value, Path) else value)
                    for key, value in vars(args).items() if key not in {"json", "plot"}}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "settings": settings, "checks": rows, "streams": [asdict(r) for r in runs],
            "memory": [{"t_s": t, "resident_bytes": size} for t, size in samples]}, indent=2))
    if args.plot:
        plot(runs, samples, 1000 / args.token_ms, args.plot)
    print(f"\n{len(missed)} target(s) missed" if missed else "\nall targets met")
    return 0
