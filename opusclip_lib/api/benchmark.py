"""Measure the HTTP stacks the clients could use, against a loopback server with fixed latency.

``python -m opusclip_lib.api.benchmark`` (or ``main(argv)``) starts a minimal aiohttp server in a
child process (so it has its own core), answering every request after ``--latency`` seconds with
a small ``videos.list`` body, then sends ``--requests`` requests at ``--concurrency`` with:

* ``aiohttp``: raw ``aiohttp.ClientSession``, the reference (it decodes the JSON, as any caller
  would; the clients validate it into pydantic models);
* ``httpx``: ``httpx.AsyncClient`` with its default transport (httpcore);
* ``httpx+aiohttp``: ``httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport())``;
* ``client/<transport>``: :class:`~opusclip_lib.api.YouTubeClient` ``videos_page`` (request
  building, error mapping, pydantic parsing, a metrics event) over each of its transports.

Each stack runs ``--rounds`` times, interleaved, and the median is reported with its ratio to the
ideal (``concurrency / latency``) and to raw aiohttp, plus the client process's CPU time per
request: on a shared machine the wall-clock rates move with everyone else's load, the CPU cost
does not, and one event loop cannot go faster than one request per CPU cost. Stacks on httpcore
send a fifth of the requests: at ~90 req/s the full count would take minutes and say nothing new.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from opusclip_lib.api.transport import check_transport_name
from opusclip_lib.api.youtube import YouTubeClient
from opusclip_lib.metrics import Recorder

VIDEO_ID = "dQw4w9WgXcQ"
BODY = json.dumps({
    "kind": "youtube#videoListResponse", "etag": "bench", "pageInfo": {"totalResults": 1,
                                                                       "resultsPerPage": 1},
    "items": [{"kind": "youtube#video", "etag": "item", "id": VIDEO_ID,
               "statistics": {"viewCount": "1", "likeCount": "1", "commentCount": "0"}}],
}).encode()
STACKS = ("aiohttp", "httpx", "httpx+aiohttp", "client/aiohttp", "client/httpx-aiohttp",
          "client/httpx")
SLOW_STACKS = ("httpx", "client/httpx")


async def serve(port: int, latency_s: float) -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        if latency_s:
            await asyncio.sleep(latency_s)
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


class Rate(NamedTuple):
    per_second: float
    cpu_us: float  # CPU time of this process per request, microseconds


async def _drive(send: Callable[[], Awaitable[object]], requests: int, concurrency: int) -> Rate:
    """``requests`` sends, ``concurrency`` at a time, after a warm-up round."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await send()

    await asyncio.gather(*(one() for _ in range(concurrency)))
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return Rate(requests / (time.perf_counter() - started),
                (time.process_time() - cpu) / requests * 1e6)


async def measure(stack: str, root: str, requests: int, concurrency: int) -> Rate:
    url = f"{root}/youtube/v3/videos?part=statistics&id={VIDEO_ID}"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if stack == "aiohttp":
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def raw() -> None:
                async with session.get(url) as response:
                    await response.json()
            return await _drive(raw, requests, concurrency)
    if stack.startswith("client/"):
        async with YouTubeClient("bench-key", base_url=f"{root}/youtube/v3", limits=limits,
                                 transport=check_transport_name(stack.split("/")[1]),
                                 recorder=Recorder()) as client:
            return await _drive(lambda: client.videos_page([VIDEO_ID]), requests, concurrency)
    transport = (AiohttpTransport(limits=limits) if stack == "httpx+aiohttp"
                 else httpx.AsyncHTTPTransport(limits=limits))
    async with httpx.AsyncClient(transport=transport) as http:
        async def via_httpx() -> None:
            (await http.get(url)).raise_for_status().json()
        return await _drive(via_httpx, requests, concurrency)


def run(latency_s: float, requests: int, concurrency: int, rounds: int,
        stacks: tuple[str, ...] = STACKS) -> dict[str, Rate]:
    """Median req/s and CPU per request for each stack, the server in a child process."""
    server = subprocess.Popen([sys.executable, "-m", __spec__.name if __spec__ else __name__,
                               "serve", str(latency_s)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        root = f"http://127.0.0.1:{int(server.stdout.readline())}"
        results: dict[str, list[Rate]] = {stack: [] for stack in stacks}
        for _ in range(rounds):
            for stack in stacks:
                count = requests // 5 if stack in SLOW_STACKS else requests
                results[stack].append(asyncio.run(measure(stack, root, count, concurrency)))
    finally:
        server.terminate()
        server.wait()
    return {stack: Rate(statistics.median(r.per_second for r in rates),
                        statistics.median(r.cpu_us for r in rates))
            for stack, rates in results.items()}


def report(medians: dict[str, Rate], latency_s: float, concurrency: int) -> str:
    ideal = concurrency / latency_s if latency_s else None
    reference = medians["aiohttp"].per_second if "aiohttp" in medians else None
    lines = [f"latency {latency_s * 1000:g} ms, concurrency {concurrency}"
             + (f", ideal {ideal:,.0f} req/s" if ideal else "")]
    for stack, (rate, cpu_us) in medians.items():
        parts = [f"  {stack:20s} {rate:8,.0f} req/s"]
        if ideal:
            parts.append(f"{rate / ideal:5.2f}x ideal")
        if reference:
            parts.append(f"{rate / reference:5.2f}x aiohttp")
        parts.append(f"{cpu_us:6.0f} us CPU/request")
        lines.append("  ".join(parts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"]:
        asyncio.run(serve(0, float(args[1])))
        return 0
    parser = argparse.ArgumentParser(prog="opusclip_lib.api.benchmark", description=__doc__)
    parser.add_argument("--latency", dest="latency_s", type=float, action="append",
                        help="server latency in seconds (repeatable; default 0.05 and 0)")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the medians here")
    options = parser.parse_args(args)
    found = {}
    for latency_s in options.latency_s or [0.05, 0.0]:
        medians = run(latency_s, options.requests, options.concurrency, options.rounds)
        print(report(medians, latency_s, options.concurrency), flush=True)
        found[str(latency_s)] = {stack: rate._asdict() for stack, rate in medians.items()}
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
