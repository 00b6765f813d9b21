"""Solutions to the exercises of notebooks/25_api_monitoring.ipynb.

Run: .venv/bin/python notebooks/solutions/25_api_monitoring_solutions.py
Offline: the notebook's workload (four APIs of the in-process sandbox, latency distributions,
injected faults, an OpenAI outage) runs twice, without and with the resilience policies.
Takes about twenty seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import httpx
import numpy as np
import pandas as pd

from opusclip_lib.api import (
    APIError,
    ElevenLabsClient,
    OpenAIClient,
    StabilityClient,
    YouTubeClient,
)
from opusclip_lib.metrics import Recorder, percentiles
from opusclip_lib.resilience import ResilienceError, defaults_for
from opusclip_lib.sandbox import SANDBOX_KEY, Latency, SandboxConfig, build_app
from opusclip_lib.sandbox.catalogue import Catalogue

CLIENTS = {"youtube": YouTubeClient, "openai": OpenAIClient, "stability": StabilityClient,
           "elevenlabs": ElevenLabsClient}


def sandbox_config() -> SandboxConfig:
    """The notebook's sandbox: latency distributions and a background of faults."""
    config = SandboxConfig.unlimited()
    config.stability.long_side_px = 16
    config.set_latency("youtube", Latency.lognormal(30, 0.4, seed=1))
    config.set_latency("openai", Latency.lognormal(250, 0.5, seed=2))
    config.set_latency("stability", Latency.lognormal(400, 0.3, seed=3))
    config.set_latency("elevenlabs", Latency.lognormal(150, 0.6, seed=4))
    config.inject("youtube.videos.list", "rate_limit", probability=0.02, seed=5)
    config.inject("openai.chat.completions", "server_error", probability=0.03, seed=6)
    config.inject("stability.generate", "timeout", probability=0.05, hang_s=1.0, seed=7)
    config.inject("elevenlabs.text_to_speech", "rate_limit", probability=0.03, seed=8)
    return config


async def fast_sleep(seconds: float) -> None:
    """Backoff at a twentieth of the SDKs' waits, so the run stays short."""
    await asyncio.sleep(seconds / 20)


async def run_workload(recorder: Recorder, *, resilient: bool,
                       while_running: Callable[[], Awaitable[None]] | None = None) -> None:
    """The notebook's open-loop workload; ``while_running`` runs beside it and is cancelled
    when it ends."""
    config = sandbox_config()
    app = build_app(config)
    ids = [video.id for video in Catalogue.load(config.catalogue_path).videos]
    async with AsyncExitStack() as stack:
        clients: dict[str, Any] = {}
        for name, client_class in CLIENTS.items():
            policy = defaults_for(name, recorder=recorder, sleep=fast_sleep) if resilient else None
            clients[name] = await stack.enter_async_context(client_class(
                SANDBOX_KEY, transport=httpx.ASGITransport(app), recorder=recorder,
                resilience=policy))
        yt, ai, sd, tts = clients.values()
        workload: Mapping[str, tuple[Callable[[int], Awaitable[Any]], int, int]] = {
            "youtube": (lambda n: yt.videos_page([ids[n % len(ids)]]), 50, 300),
            "openai": (lambda n: ai.write_caption(f"Clip {n}: why async Python waits."), 10, 60),
            "stability": (lambda n: sd.generate_core("a red fox", seed=n + 1), 6, 36),
            "elevenlabs": (lambda n: tts.text_to_speech(f"Clip number {n}.",
                                                        "21m00Tcm4TlvDq8ikWAM",
                                                        output_format="pcm_22050"), 10, 60),
        }

        async def scheduled(call: Callable[[int], Awaitable[Any]], n: int, at: float) -> None:
            await asyncio.sleep(at)
            try:
                await call(n)
            except (APIError, ResilienceError):
                pass

        async def outage() -> None:
            await asyncio.sleep(2.0)
            fault = config.inject("openai.chat.completions", "unavailable")
            await asyncio.sleep(1.5)
            fault.probability = 0.0

        side = asyncio.create_task(while_running()) if while_running else None
        try:
            async with asyncio.TaskGroup() as work:
                for call, rate, count in workload.values():
                    for n in range(count):
                        work.create_task(scheduled(call, n, n / rate))
                work.create_task(outage())
        finally:
            if side is not None:  # the workload is done (or failed): stop the live view
                side.cancel()
                await asyncio.gather(side, return_exceptions=True)


def exercise_1_percentiles_by_outcome(http: pd.DataFrame) -> None:
    print("1. percentiles by operation and outcome (ms)")
    table = percentiles(http, ["name", "ok"])
    assert set(table.loc["openai.chat.completions"].index) == {False, True}, "the outage shows"
    print(table.to_string())
    # Stability's p99 is the 1 s gateway timeouts: successful calls alone top out near 700 ms.
    # A p99 of successes only would hide that 1 call in 20 made the user wait a full second
    # and then failed: for the user, failed calls are part of the latency.


def alerts(http: pd.DataFrame, slo_ms: Mapping[str, float], max_error_rate: float,
           window_s: float, step_s: float = 0.5) -> pd.DataFrame:
    """Exercise 2: windows (by end time) where an API broke its p95 objective or error rate."""
    rows = []
    for provider, group in http.groupby("provider"):
        for start in np.arange(0, http["end"].max(), step_s):
            window = group[(group["end"] >= start) & (group["end"] < start + window_s)]
            if len(window) < 5:  # too few calls to judge
                continue
            p95 = window["seconds"].quantile(0.95) * 1000
            error_rate = 1 - window["ok"].astype(bool).mean()
            if p95 > slo_ms[provider] or error_rate > max_error_rate:
                rows.append({"provider": provider, "from_s": start, "to_s": start + window_s,
                             "calls": len(window), "p95_ms": round(p95),
                             "error_rate": round(error_rate, 2)})
    return pd.DataFrame(rows)


def exercise_2_slo_alerts(http: pd.DataFrame) -> None:
    found = alerts(http, {"youtube": 100, "openai": 800, "stability": 1200, "elevenlabs": 800},
                   max_error_rate=0.2, window_s=1.0)
    print("2. alerts (1 s windows every 0.5 s: p95 over objective or > 20% errors)")
    print(found.to_string(index=False) if len(found) else "   none")
    assert "openai" in set(found.get("provider", [])), "the OpenAI outage fires an alert"
    # The OpenAI outage (2.0-3.5 s) fires in the first window that ends after it began: with
    # 1 s windows stepped every 0.5 s, within about half a second to a second. Shorter windows
    # react faster but hold fewer calls, so they fire on noise too.


def exercise_3_retries_and_monitoring(http: pd.DataFrame, attempts: pd.DataFrame) -> None:
    requests = http.assign(failed=~http["ok"].astype(bool)).groupby("provider")["failed"].mean()
    last = attempts.sort_values("attempt").groupby(["name", "call"]).last()
    calls = last.assign(failed=~last["ok"].astype(bool)).groupby(level="name")["failed"].mean()
    errors = last[~last["ok"].astype(bool)].groupby(level="name")["error"].value_counts()
    print("3. with retries: failed HTTP requests vs failed calls (after their retries)")
    print(pd.DataFrame({"requests_failed": requests, "calls_failed": calls}).round(3).to_string())
    print("   why the calls that failed, failed:", errors.to_dict())
    for provider in ("youtube", "stability", "elevenlabs"):
        assert calls[provider] <= requests[provider], f"retries rescue {provider}'s calls"
    assert ("openai", "CircuitOpenError") in errors.index, "the open breaker refuses calls"
    # Retries rescue the scattered 429s, 5xx and timeouts: for YouTube, Stability and ElevenLabs
    # far fewer calls fail than requests. OpenAI is the other way round: its outage opened the
    # circuit breaker, whose 30 s cool-down refuses every later call locally (CircuitOpenError)
    # without a request, so the requests' error rate never sees them. The requests' rate tells
    # how the provider is doing (and what retries cost in quota and load), the calls' rate what
    # users saw: watch both.


async def exercise_4_live_view() -> None:
    recorder = Recorder()

    async def live_view() -> None:
        while True:
            await asyncio.sleep(0.5)
            http = recorder.frame("http")
            if len(http):
                summary = http.groupby("provider").agg(
                    calls=("ok", "size"), failed=("ok", lambda ok: int((~ok.astype(bool)).sum())),
                    p95_ms=("seconds", lambda s: round(s.quantile(0.95) * 1000)))
                print(f"   t={recorder.now():4.1f} s  " + "  ".join(
                    f"{name}: {row.calls} calls, p95 {row.p95_ms} ms, {row.failed} failed"
                    for name, row in summary.iterrows()))

    print("4. live view")
    await run_workload(recorder, resilient=False, while_running=live_view)
    leftover = len(asyncio.all_tasks()) - 1
    assert leftover == 0, "the live view stopped with the workload"
    print(f"   done; tasks still running besides this one: {leftover}")


async def main() -> None:
    plain = Recorder()
    await run_workload(plain, resilient=False)
    http = plain.frame("http")
    exercise_1_percentiles_by_outcome(http)
    exercise_2_slo_alerts(http)
    resilient = Recorder()
    await run_workload(resilient, resilient=True)
    exercise_3_retries_and_monitoring(resilient.frame("http"), resilient.frame("attempt"))
    await exercise_4_live_view()


if __name__ == "__main__":
    asyncio.run(main())
