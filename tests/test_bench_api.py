"""``opusclip bench api`` runs end to end on tiny numbers, and the API charts draw real events.

Smoke tests, not timed ones: they check that every stack talks to the sandbox, that the table,
JSON and plot come out, and that the charts accept what the clients record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from opusclip_lib.api import APIError, YouTubeClient
from opusclip_lib.bench import api as bench
from opusclip_lib.charts.api import (
    call_outcomes,
    error_rate_over_time,
    latency_histograms,
    speedup_vs_concurrency,
    throughput_over_time,
    throughput_vs_concurrency,
)
from opusclip_lib.metrics import Recorder
from opusclip_lib.resilience import Resilience, RetryPolicy
from opusclip_lib.sandbox import SANDBOX_KEY, SandboxConfig, build_app, serve

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def test_bench_writes_table_json_and_plot(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_png = tmp_path / "api.json", tmp_path / "api.png"
    code = bench.main(["--concurrency", "1,3", "--seconds", "0.2", "--rounds", "1",
                       "--latency-ms", "5", "--cache-calls", "20", "--json", str(out_json),
                       "--plot", str(out_png)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "sandbox in a process" in printed
    assert "x aiohttp" in printed
    assert "cache hit" in printed
    results = json.loads(out_json.read_text())
    medians = results["medians"]
    assert {(row["stack"], row["concurrency"]) for row in medians} == {
        (stack, level) for stack in bench.DEFAULT_STACKS for level in (1, 3)}
    assert all(row["requests"] >= row["concurrency"] and row["req_per_s"] > 0 for row in medians)
    assert all(row["x_aiohttp"] == 1.0 for row in medians if row["stack"] == "aiohttp")
    assert all(row["cpu_us_per_request"] > 0 for row in medians)
    assert results["cache"]["hit_s"] > 0
    assert results["cache"]["uncached_s"] > 0
    assert out_png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("stack", bench.STACKS)
async def test_every_stack_completes_closed_loop_calls_on_a_served_sandbox(stack: str) -> None:
    async with (serve(SandboxConfig.unlimited()) as urls,
                bench.open_stack(stack, urls.youtube, concurrency=4) as send):
        completed, seconds = await bench.closed_loop(send, 4, seconds=0.05)
    assert completed >= 4
    assert seconds > 0


async def test_client_stack_misses_the_cache_on_every_call() -> None:
    """Fresh ids make every call a live one: the benchmark measures requests, not hits."""
    policy = bench.bench_policy(2)
    app = build_app(SandboxConfig.unlimited())
    ids = bench.fresh_ids()
    async with YouTubeClient(SANDBOX_KEY, transport=httpx.ASGITransport(app),
                             resilience=policy) as client:
        completed, _ = await bench.closed_loop(
            lambda: client.videos_page([next(ids), bench.CATALOGUE_VIDEO]), 2, seconds=0.05)
    assert policy.stats.hits == 0
    assert client.usage.calls == completed + 2  # plus the two warm-up calls


def test_medians_keep_the_middle_run_per_stack_and_level() -> None:
    runs = [bench.Run("aiohttp", 10, requests, 1.0, 0.5) for requests in (100, 300, 200)]
    runs.append(bench.Run("client", 10, 50, 1.0, 0.5))
    middle = {(r.stack, r.concurrency): r.requests for r in bench.medians(runs)}
    assert middle == {("aiohttp", 10): 200, ("client", 10): 50}
    table = bench.rows(bench.medians(runs), latency_s=0.05)
    client = next(row for row in table if row["stack"] == "client")
    assert client["x_ideal"] == pytest.approx(50 / 200)
    assert client["x_aiohttp"] == pytest.approx(50 / 200)


async def test_api_charts_draw_recorded_events() -> None:
    config = SandboxConfig.unlimited()
    config.set_latency("youtube.videos.list", 2)
    config.inject("youtube.videos.list", "server_error", probability=0.3, seed=1)
    recorder = Recorder()
    app = build_app(config)
    async with YouTubeClient(SANDBOX_KEY, transport=httpx.ASGITransport(app), recorder=recorder,
                             resilience=Resilience("youtube", retry=RetryPolicy(max_retries=0),
                                                   recorder=recorder)) as client:
        for n in range(30):
            with suppress(APIError):
                await client.videos_page([f"chart{n:06d}"])
    http = recorder.frame("http")
    assert set(http["status"]) == {200, 500}

    figure = latency_histograms(http)
    assert figure.axes[-1].get_xscale() == "log"
    assert throughput_over_time(http, bin_s=0.01).get_ylabel() == "calls / s"
    assert error_rate_over_time(http, bin_s=0.01).get_ylim()[0] == 0
    outcomes = call_outcomes(recorder.frame("attempt"))
    assert [label.get_text() for label in outcomes.get_yticklabels()] == ["ok", "500"]
    runs = pd.DataFrame({"stack": ["aiohttp", "aiohttp"], "concurrency": [1, 10],
                         "req_per_s": [19.0, 180.0]})
    assert throughput_vs_concurrency(runs, latency_s=0.05).get_yscale() == "log"
    sweep = pd.DataFrame({"concurrency": [1, 2, 4], "seconds": [1.0, 0.5, 0.26],
                          "ideal": [1.0, 2.0, 4.0]})
    assert len(speedup_vs_concurrency(sweep).get_lines()) == 2


def test_with_no_latency_the_table_has_no_ideal() -> None:
    runs = [bench.Run("aiohttp", 100, 400, 1.0, 0.5), bench.Run("client", 100, 300, 1.0, 0.5)]
    table = bench.rows(runs, latency_s=0.0)
    client = next(row for row in table if row["stack"] == "client")
    assert client["ideal_req_per_s"] is None
    assert client["x_ideal"] is None
    assert client["x_aiohttp"] == pytest.approx(0.75)
    bench.print_table(table)


def test_the_cpu_bound_target_is_checked_at_1_ms(capsys: pytest.CaptureFixture[str]) -> None:
    runs = [bench.Run("aiohttp", 100, 400, 1.0, 0.5), bench.Run("client", 100, 260, 1.0, 0.5)]
    missed = bench.report(bench.rows(runs, latency_s=0.001), (1.0, 0.01), latency_ms=1.0)
    printed = capsys.readouterr().out
    assert "MISS client at C=100, 1 ms: 0.65 x raw aiohttp (target >= 0.7)" in printed
    assert "x ideal" not in printed
    assert missed == ["client x raw aiohttp at 1 ms"]


def test_a_latency_with_no_target_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    runs = [bench.Run("aiohttp", 100, 400, 1.0, 0.5), bench.Run("client", 100, 390, 1.0, 0.5)]
    assert bench.report(bench.rows(runs, latency_s=0.0), (1.0, 0.01), latency_ms=0.0) == []
    assert "no throughput target at 0 ms" in capsys.readouterr().out
