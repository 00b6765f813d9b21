"""The exercise solutions of the blocking-the-loop section (00) and of notebook 36 run and
reach the answers their comments give."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from opusclip_lib.config import PROJECT_ROOT


def solutions(name: str) -> ModuleType:
    path = Path(PROJECT_ROOT / "notebooks" / "solutions" / f"{name}_solutions.py")
    spec = importlib.util.spec_from_file_location(f"{name}_solutions", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_00_exercise_6_names_the_blocker_and_the_fix_silences_it() -> None:
    before, after = await solutions("00_async_primer").exercise_6_find_and_fix_the_blocker()
    assert before
    assert all("make_clips()" in report for report in before)
    assert after == []


async def test_36_exercise_1_every_job_line_has_the_worker() -> None:
    lines = await solutions("36_observability_and_debugging").exercise_1_one_more_field()
    assert {line["worker"] for line in lines} == {"w1"}


async def test_36_exercise_2_the_thumbnail_stage_trips_the_alert() -> None:
    alerts = await solutions("36_observability_and_debugging").exercise_2_slow_stage_alert()
    # The thumbnail stage calls Stability; other stages may be slow too on a busy machine.
    assert "thumbnail" in [alert.summary.split()[1] for alert in alerts]


async def test_36_exercise_3_a_429_storm_opens_the_breaker() -> None:
    statuses = await solutions("36_observability_and_debugging").exercise_3_a_different_storm()
    assert statuses == {"failed": 3}
