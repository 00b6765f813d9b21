"""The exercise solutions of notebook 26 run, and their own checks hold."""

from __future__ import annotations

import importlib.util

from opusclip_lib.config import PROJECT_ROOT

SOLUTIONS = PROJECT_ROOT / "notebooks" / "solutions" / "26_api_streaming_solutions.py"


async def test_streaming_solutions_run_and_check_themselves(capsys):
    spec = importlib.util.spec_from_file_location("solutions_26", SOLUTIONS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    await module.main()
    printed = capsys.readouterr().out
    assert [line[:2] for line in printed.splitlines()] == ["1.", "2.", "3.", "4."]
