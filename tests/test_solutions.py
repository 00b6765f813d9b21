"""Every exercise solution runs, the way the notebooks tell the learner to run it.

Each ``notebooks/solutions/*.py`` runs as a script in its own process, in the environment the
notebooks get (the same ``OPUSCLIP_*`` variables; a scratch work folder so it cannot disturb the
notebooks' database). It must exit 0: a solution checks what its exercise asks with ``assert``,
so a wrong answer fails here. No traceback, unawaited coroutine or unclosed resource may reach
its stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from opusclip_lib import config

SOLUTIONS = sorted((config.PROJECT_ROOT / "notebooks" / "solutions").glob("*_solutions.py"))
HANG_GUARD_S = 280  # catches a hang (under the suite's 300 s per test); the slowest takes ~1 min
# Files an exercise asks for, written into the work folder.
EXPECTED_FILES = {"14_db_video_workflow_solutions": ["14_batch_claims_timeline.png"]}


@pytest.mark.slow
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_runs_and_its_checks_pass(path, tmp_path) -> None:
    env = {**os.environ, "OPUSCLIP_WORK_DIR": str(tmp_path), "MPLBACKEND": "agg"}
    done = subprocess.run([sys.executable, str(path)], cwd=config.PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=HANG_GUARD_S, check=False)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    for noise in ("Traceback", "RuntimeWarning", "ResourceWarning", "was never awaited"):
        assert noise not in done.stderr, done.stderr[-3000:]
    for name in EXPECTED_FILES.get(path.stem, []):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
