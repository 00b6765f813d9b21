"""``opusclip bench scale`` end to end at toy sizes on PostgreSQL: every part runs, the JSON has
its shape and each target prints PASS or MISS (timings are the benchmark's business)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opusclip_lib.bench.pipeline import Memory
from opusclip_lib.bench.scale import ClaimRun, ProcessRun, Results, checks, main


def _process(processes: int, *, render: bool = False, pinned: bool = False,
             per_min: float = 60.0) -> ProcessRun:
    return ProcessRun(processes, 4, render, pinned, 10, 10, 600 / per_min, 60.0 * processes,
                      1.0, 2)


def test_checks_hold_each_target_against_its_measure() -> None:
    results = Results(
        processes=[_process(1, per_min=57.0), _process(2, per_min=100.0),
                   _process(1, render=True, pinned=True, per_min=10.0),
                   _process(2, render=True, pinned=True, per_min=18.0),
                   _process(1, render=True, per_min=16.0)],
        claims=[ClaimRun(2, 100, False, 12_000, 2.0, 120, 1.0, 120, 1.0, 0.5),
                ClaimRun(2, 1, True, 300, 2.0, 300, 1.0, 300, 1.0, 0.5)],
        memory=[Memory(10, 16, 1.0, 1.0, 1.0, 0.0), Memory(100, 16, 9.0, 1.1, 2.0, 0.12)])
    found = checks(results)
    assert [(c.ok, c.shown) for c in found] == [
        (True, "0.95"), (False, "0.83"), (True, "1.80x"), (True, "6,000"), (False, "+12.0%")]
    assert "best: claim(100), complete per batch, 2 process(es)" in found[3].check


@pytest.mark.slow
def test_a_toy_run_prints_every_target_and_writes_json_and_plot(
        postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_png = tmp_path / "scale.json", tmp_path / "scale.png"
    code = main(["--database", postgres_url, "--processes", "1,2", "--concurrency", "1",
                 "--waves", "1", "--scale", "0.05", "--clips", "1", "--clip-seconds", "1",
                 "--render-processes", "1,2", "--render-videos", "1",
                 "--claim-workers", "1,2", "--claim-batch", "10", "--claim-seconds", "0.2",
                 "--claim-jobs", "200", "--brokers", "none", "--broker-jobs", "2",
                 "--saturation", "1,2", "--saturation-videos", "1", "--memory-videos", "10",
                 "--json", str(out_json), "--plot", str(out_png)])
    assert code == 0
    printed = capsys.readouterr().out
    for target in ("1 process(es), rendering off: videos/min over the critical-path bound",
                   "2 process(es), rendering off", "rendering on, 2 processes over 1",
                   "claims: jobs claimed and completed", "resident memory over 10 videos"):
        assert f"PASS {target}" in printed or f"MISS {target}" in printed, target
    assert "2 videos in flight: 2 processes" in printed  # against one process at C=2
    result = json.loads(out_json.read_text())
    assert set(result) == {"settings", "checks", "processes", "claims", "brokers", "saturation",
                           "memory"}
    assert len(result["checks"]) == 5
    assert [(r["processes"], r["render"], r["pinned"]) for r in result["processes"]] == [
        (1, False, False), (2, False, False), (1, True, True), (2, True, True),
        (1, True, False)]
    assert all(r["completed"] == r["videos"] for r in result["processes"])
    assert [(r["batch"], r["commit_per_job"], r["workers"]) for r in result["claims"]] == [
        (1, True, 1), (1, True, 2), (10, True, 1), (10, True, 2), (10, False, 1),
        (10, False, 2)]
    assert all(r["jobs"] > 0 for r in result["claims"])
    assert [b["broker"] for b in result["brokers"]] == ["none (polling)"]
    assert [r["concurrency"] for r in result["saturation"]] == [1, 2]
    assert [m["videos"] for m in result["memory"]] == [1, 10]
    assert out_png.stat().st_size > 10_000
