"""The benchmark runs end to end (tiny sizes) and the chart helpers draw what the layer records."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from opusclip_lib.bench import db as bench
from opusclip_lib.charts.db import (
    cache_hit_rate,
    latency_percentiles,
    pool_utilisation,
    rows_per_second,
)
from opusclip_lib.db import connect, videos
from opusclip_lib.db.cache import MemoryStore, VideoCache

matplotlib.use("Agg")


def test_rows_are_distinct_valid_videos() -> None:
    rows = bench.make_rows(5000)
    assert len({row["youtube_id"] for row in rows}) == 5000
    videos.VIDEOS.rows(rows)  # passes validation


def test_bench_writes_json_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPUSCLIP_MYSQL_URL", raising=False)
    out_json, out_png = tmp_path / "db.json", tmp_path / "db.png"
    code = bench.main(["--rows", "300", "--per-row-rows", "20", "--repeat", "1",
                       "--backends", "sqlite,mysql", "--json", str(out_json),
                       "--plot", str(out_png), "--breakdown"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "skipping mysql: OPUSCLIP_MYSQL_URL is not set" in printed
    assert "per-row autocommit" in printed
    assert "x raw" in printed
    assert printed.count("us/row = raw driver") == 2  # both per-row paths on SQLite
    assert "info sqlite: the layer's checks on the raw driver" in printed
    results = json.loads(out_json.read_text())
    assert {r["method"] for r in results} == {
        "per-row autocommit", "per-row autocommit, SQLite defaults",
        "per-row, one transaction", "batch (executemany)",
        "bulk (COPY / multi-row)", "raw per-row autocommit", "raw per-row, one transaction",
        "raw per-row + checks, one transaction", "raw sqlite3 executemany"}
    assert all(r["backend"] == "sqlite" and r["seconds"] > 0 for r in results)
    assert out_png.read_bytes().startswith(b"\x89PNG")


async def test_charts_draw_recorded_frames(tmp_path: Path) -> None:
    async with connect(f"sqlite:///{tmp_path}/charts.db") as db:
        cache = VideoCache(db, MemoryStore())
        async with db.sample_pool(interval_s=0.005):
            await videos.insert_videos(db, bench.make_rows(20))
            ids = [row["youtube_id"] for row in bench.make_rows(20)]
            await asyncio.gather(*(cache.get(youtube_id) for youtube_id in ids * 3))
        frames = {kind: db.recorder.frame(kind) for kind in ("query", "pool", "cache")}

    assert latency_percentiles(frames["query"]).get_xlabel() == "latency (ms)"
    assert pool_utilisation(frames["pool"]).get_ylabel() == "connections"
    assert cache_hit_rate(frames["cache"]).get_ylim()[1] > 1
    results = pd.DataFrame([{"backend": "sqlite", "method": "batch", "rows": 100,
                             "seconds": 0.01}])
    assert rows_per_second(results).get_xscale() == "log"
    matplotlib.pyplot.close("all")


def test_rows_per_second_draws_dots_not_bars_on_its_log_axis() -> None:
    results = pd.DataFrame([
        {"backend": backend, "method": method, "rows": 100, "seconds": seconds}
        for backend in ("sqlite", "postgresql")
        for method, seconds in (("per row", 1.0), ("batch", 0.01))])
    ax = rows_per_second(results)
    assert len(ax.patches) == 0  # a bar on a log axis would start at an arbitrary baseline
    assert [list(line.get_xdata()) for line in ax.lines] == [[100.0, 10_000.0]] * 2
    matplotlib.pyplot.close("all")


def test_cache_hit_rate_is_drawn_against_the_look_up_number() -> None:
    lookups = pd.DataFrame({"store": "memory", "start": [0.5, 0.1, 0.9],
                            "hit": [True, False, True]})
    ax = cache_hit_rate(lookups)
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    assert list(ax.lines[0].get_ydata()) == [0.0, 0.5, 2 / 3]
    matplotlib.pyplot.close("all")
