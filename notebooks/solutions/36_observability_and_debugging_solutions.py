"""Solutions to the exercises of notebooks/36_observability_and_debugging.ipynb.

Run: .venv/bin/python notebooks/solutions/36_observability_and_debugging_solutions.py
This is a script, so it starts its own event loop with asyncio.run(); in a notebook, paste
the body of a function into a cell and ``await`` it instead. Each exercise works on a scratch
SQLite file, so it never touches the notebooks' database.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from opusclip_lib.db import connect
from opusclip_lib.db import failures as failure_rows
from opusclip_lib.observability import Metrics, MetricsRecorder, bound, configure_logging
from opusclip_lib.observability.alerts import Alert
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.workflow import UNLIMITED, WorkflowConfig, open_services, run_batch
from opusclip_lib.sandbox.endpoints import LATENCY_PROFILE_MS, sandbox_config, sandbox_endpoints

VIDEO_IDS = ["opusSample1", "R-j_8U_m7aS", "y4SXvE9rwLb"]


def quick_sandbox(scale: float = 0.05) -> SandboxConfig:
    """The notebook's sandbox: real latency profile scaled down, tiny thumbnails and speech."""
    sandbox = sandbox_config(LATENCY_PROFILE_MS, scale=scale)
    sandbox.stability.long_side_px = 16
    sandbox.elevenlabs.seconds_per_character = 0.005
    return sandbox


async def batch(folder: Path, sandbox: SandboxConfig, *, recorder: MetricsRecorder | None = None,
                cool_down_s: float = 30.0, **options: Any) -> dict[str, int]:
    workflow = WorkflowConfig(work_dir=folder / "work", clips=1, max_clip_s=1.0,
                              render=False, poll_s=0.02, **options)
    async with connect(f"sqlite:///{folder / 'exercise.db'}", recorder=recorder) as db, \
            open_services(sandbox_endpoints(build_app(sandbox)), limits=UNLIMITED,
                          recorder=recorder, cool_down_s=cool_down_s) as services:
        report = await run_batch(db, services, VIDEO_IDS, workflow, concurrency=3,
                                 recorder=recorder)
        if report.completed != len(VIDEO_IDS):
            print("groups:", [(g.exception_type, g.stage, g.count)
                              for g in await failure_rows.failure_groups(db)])
    return report.statuses


async def exercise_1_one_more_field() -> list[dict[str, Any]]:
    stream = io.StringIO()
    handler = configure_logging(json_lines=True, stream=stream, logger="opusclip_lib")
    try:
        with tempfile.TemporaryDirectory() as folder, bound(worker="w1"):
            await batch(Path(folder), quick_sandbox())
    finally:
        logging.getLogger("opusclip_lib").removeHandler(handler)
        logging.getLogger("opusclip_lib").setLevel(logging.NOTSET)  # back to the root's level
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    job_lines = [line for line in lines if "job_id" in line]
    assert job_lines and all(line["worker"] == "w1" for line in job_lines)
    print(f"{len(job_lines)} job lines from {len({l['job_id'] for l in job_lines})} jobs, "
          "every one with worker=w1")
    return job_lines


def slow_stages(metrics_text: str, threshold_s: float) -> list[Alert]:
    """An alert per stage whose mean time (histogram sum / count) is over ``threshold_s``."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "opusclip_stage_seconds_sum":
                sums[sample.labels["stage"]] = sums.get(sample.labels["stage"], 0) + sample.value
            elif sample.name == "opusclip_stage_seconds_count":
                counts[sample.labels["stage"]] = (counts.get(sample.labels["stage"], 0)
                                                  + sample.value)
    return [Alert("slow_stage", f"stage {stage} takes {sums[stage] / n:.2f} s on average",
                  sums[stage] / n)
            for stage, n in counts.items() if n and sums[stage] / n > threshold_s]


async def exercise_2_slow_stage_alert() -> list[Alert]:
    sandbox = quick_sandbox()
    sandbox.set_latency("stability.generate", 600)  # the endpoint: it overrides the profile
    metrics = Metrics()
    with tempfile.TemporaryDirectory() as folder:
        await batch(Path(folder), sandbox, recorder=MetricsRecorder(metrics))
    alerts = slow_stages(generate_latest(metrics.registry).decode(), threshold_s=0.4)
    print("slow stages:", [alert.summary for alert in alerts])
    return alerts  # the thumbnail stage trips it: it is the one that calls Stability


async def exercise_3_a_different_storm() -> dict[str, int]:
    sandbox = quick_sandbox()
    sandbox.inject("stability.*", "rate_limit", retry_after_s=0.05)
    with tempfile.TemporaryDirectory() as folder:
        statuses = await batch(Path(folder), sandbox, max_attempts=1, cool_down_s=0.1)
    print("statuses:", statuses)
    # One group again: RateLimitError in the thumbnail stage, for stability (a refusal by the open
    # breaker only defers a job; what it finally fails with is the provider's 429). The breaker
    # counts every transient failure, 429s included (CircuitBreaker.on_failure: is_transient), so
    # five 429s open it as five 500s would. Whether that is right is a policy choice: a 429 says
    # "slow down", and an open breaker does slow us down (to zero, for its cool-down), but a
    # rate limiter that honours Retry-After would keep the work going at the allowed pace.
    return statuses


async def main() -> None:
    for exercise in (exercise_1_one_more_field, exercise_2_slow_stage_alert,
                     exercise_3_a_different_storm):
        print(f"--- {exercise.__name__}")
        await exercise()


if __name__ == "__main__":
    asyncio.run(main())
