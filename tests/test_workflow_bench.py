"""``opusclip bench pipeline`` and ``bench transcribe`` run end to end at toy sizes and write
their JSON and chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opusclip_lib.bench import pipeline as bench
from opusclip_lib.bench import transcribe as transcribe_bench
from opusclip_lib.workflow import NAIVE, OPTIMISED


def test_catalogue_has_distinct_valid_ids(tmp_path: Path) -> None:
    ids = bench.write_catalogue(tmp_path / "catalogue.json", 45)
    assert len(set(ids)) == 45
    assert all(len(i) == 11 for i in ids)
    entries = json.loads((tmp_path / "catalogue.json").read_text())["videos"]
    assert entries[40]["title"].endswith("#40")
    assert entries[40]["id"] == "bench000040"


def test_stage_latencies_define_the_bound() -> None:
    assert sum(bench.stage_latencies(1.0, 3, OPTIMISED)) == pytest.approx(3.9)
    assert sum(bench.stage_latencies(0.5, 2, NAIVE)) == pytest.approx(0.45 + 2 * 1.5)


def test_bench_writes_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_png = tmp_path / "pipeline.json", tmp_path / "pipeline.png"
    code = bench.main(["--videos", "4", "--concurrency", "1,4", "--scale", "0.05",
                       "--naive-videos", "2", "--memory-videos", "10", "--memory-scale", "0.05",
                       "--json", str(out_json), "--plot", str(out_png)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "critical-path bound" in printed
    assert "tracemalloc peak" in printed
    result = json.loads(out_json.read_text())
    runs = result["runs"]
    assert [(r["mode"], r["concurrency"], r["videos"]) for r in runs] == [
        ("optimised", 1, 4), ("optimised", 4, 8), ("naive", 1, 2)]  # two waves at least
    assert all(r["completed"] == r["videos"] and r["ratio"] > 0 for r in runs)
    assert all(r["cpu_ms_per_video"] > 0 for r in runs)
    assert runs[1]["bound_per_min"] == pytest.approx(4 * runs[0]["bound_per_min"])
    assert "one process still scales at C=4, the highest level measured" in printed
    assert [m["videos"] for m in result["memory"]] == [1, 10]
    assert all(m["peak_mb"] > 0 for m in result["memory"])
    assert "resident memory over 10 videos, last third vs first" in printed
    assert result["settings"]["latency_profile_ms"]["stability.generate"] == 2000.0
    assert out_png.stat().st_size > 10_000


def test_bench_render_reports_the_ffmpeg_bound(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "render.json"
    code = bench.main(["--render", "--videos", "1", "--concurrency", "1", "--scale", "0.05",
                       "--clips", "1", "--clip-seconds", "1", "--naive-videos", "0",
                       "--json", str(out_json)])
    assert code == 0
    assert "of the ffmpeg bound" in capsys.readouterr().out
    [run] = json.loads(out_json.read_text())["runs"]
    assert run["ffmpeg_cpu_s"] > 0
    assert run["ffmpeg_ratio"] == pytest.approx(run["ffmpeg_cpu_s"] / run["cores"]
                                                / run["seconds"])


def test_bench_transcribe_compares_fan_out_with_one_at_a_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_png = tmp_path / "transcribe.json", tmp_path / "transcribe.png"
    code = transcribe_bench.main(["--minutes", "1", "--chunk-mb", "0.05", "--latency-ms", "50",
                                  "--concurrency", "2", "--json", str(out_json),
                                  "--plot", str(out_png)])
    assert code == 0
    assert "C=4 was not measured" in capsys.readouterr().out
    runs = json.loads(out_json.read_text())["runs"]
    assert [r["concurrency"] for r in runs] == [1, 2]
    assert runs[0]["chunks"] == runs[1]["chunks"] > 1
    assert out_png.stat().st_size > 5_000
