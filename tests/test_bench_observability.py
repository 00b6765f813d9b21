"""``opusclip bench observability``: its on/off ratios and PASS/MISS lines (timings are the
benchmark's business, not a test's)."""

from __future__ import annotations

import pytest

from opusclip_lib.bench.observability import Sample, logging_costs, ratios, report


def test_ratios_are_medians_on_over_off() -> None:
    samples = [Sample("api", False, rate, "req/s") for rate in (100, 90, 110)]
    samples += [Sample("api", True, rate, "req/s") for rate in (96, 80, 99)]
    assert ratios(samples) == {"api": {"off": 100, "on": 96, "ratio": pytest.approx(0.96)}}


def test_a_ratio_under_the_target_is_a_miss(capsys: pytest.CaptureFixture[str]) -> None:
    table = {"pipeline": {"off": 100.0, "on": 99.0, "ratio": 0.99},
             "api": {"off": 100.0, "on": 90.0, "ratio": 0.90}}
    missed = report(table, {"stdlib": 10.0, "structlog": 8.0})
    assert missed == ["api"]
    assert "PASS  pipeline" in capsys.readouterr().out


def test_logging_costs_measure_both_libraries() -> None:
    costs = logging_costs(lines=200)
    assert set(costs) == {"stdlib", "structlog"}
    assert min(costs.values()) > 0
