"""``python -m opusclip_lib.profile_run --out build/profile.html``: one pipeline run profiled.

Two videos go through the whole workflow (rendering included) against the in-process sandbox on
a scratch SQLite file, under pyinstrument in async mode; the HTML report goes to ``--out`` and
the top frames are printed. ``make run`` writes it next to the executed notebooks.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from opusclip_lib.config import PROJECT_ROOT
from opusclip_lib.db import connect
from opusclip_lib.observability.profiling import profiled, top_frames
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.endpoints import sandbox_endpoints
from opusclip_lib.workflow import UNLIMITED, BatchReport, WorkflowConfig, open_services, run_batch

VIDEOS = ("opusSample1", "R-j_8U_m7aS")


async def one_run(folder: Path) -> BatchReport:
    config = WorkflowConfig(work_dir=folder / "work", clips=2, max_clip_s=2.0,
                            poll_s=0.05)
    endpoints = sandbox_endpoints(build_app(SandboxConfig.unlimited()))
    async with connect(f"sqlite:///{folder / 'profile.db'}") as db, \
            open_services(endpoints, limits=UNLIMITED) as services:
        return await run_batch(db, services, VIDEOS, config, concurrency=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opusclip_lib.profile_run",
                                     description=__doc__)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "profile.html")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="opusclip-profile-") as folder:
        report, profiler = asyncio.run(profiled(one_run(Path(folder))))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(profiler.output_html(), encoding="utf-8")
    print(f"Profile of one pipeline run ({report.completed}/{report.videos} videos): {args.out}")
    for row in top_frames(profiler, 5):
        print(f"  {row['cpu_s']:8.3f} s CPU  {row['function']}  ({row['where']})")
    return 0 if report.completed == report.videos else 1


if __name__ == "__main__":
    raise SystemExit(main())
