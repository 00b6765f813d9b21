"""The core installs and imports without the tooling: no Jupyter, vcrpy, starlette, uvicorn or
matplotlib in a plain ``pip install``, and no pandas loaded until a frame is asked for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from opusclip_lib import config

TOOLING_MODULES = ("jupyter_core", "jupyterlab", "nbclient", "nbformat", "IPython", "vcr",
                   "starlette", "uvicorn", "matplotlib")
LAZY_MODULES = ("pandas",)
"""Installed with the core, but loaded only by the functions that return DataFrames."""

PROBE = """
import importlib.util, json, sys
import opusclip_lib.api, opusclip_lib.db, opusclip_lib.workflow
from opusclip_lib.media.captions import caption_font
from opusclip_lib.media.samples import sample_video
names = json.loads(sys.argv[1])
print(json.dumps({
    "loaded": sorted(n for n in names if n in sys.modules),
    "installed": sorted(n for n in names if importlib.util.find_spec(n) is not None),
    "samples": sample_video().is_file() and caption_font().is_file(),
}))
"""


def probe(python: Path | str) -> dict[str, object]:
    names = json.dumps([*TOOLING_MODULES, *LAZY_MODULES])
    finished = subprocess.run([str(python), "-c", PROBE, names], capture_output=True, text=True,
                              check=True, env={"PATH": str(Path(python).parent)})
    result: dict[str, object] = json.loads(finished.stdout)
    return result


def test_importing_the_core_loads_no_tooling_and_no_pandas() -> None:
    result = probe(sys.executable)
    assert result["loaded"] == []
    assert result["samples"] is True


@pytest.mark.slow
@pytest.mark.timeout(900)  # a fresh venv installs the core's dependencies: minutes when busy
def test_a_core_only_install_brings_no_tooling(tmp_path: Path) -> None:
    """``pip install .`` with no extras, from a copy of this checkout's package and metadata."""
    source = tmp_path / "source"
    shutil.copytree(config.PROJECT_ROOT / "opusclip_lib", source / "opusclip_lib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(config.PROJECT_ROOT / name, source / name)
    environment = tmp_path / "core"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)],
                   capture_output=True, check=True)

    result = probe(python)
    assert result["installed"] == ["pandas"]
    assert result["loaded"] == []
    assert result["samples"] is True  # package data, not the checkout

    bench = subprocess.run([str(environment / "bin" / "opusclip"), "bench", "db"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert bench.returncode != 0
    assert 'pip install "opusclip-lib[bench]"' in bench.stderr

    dashboard = subprocess.run([str(environment / "bin" / "opusclip"), "dashboard"],
                               capture_output=True, text=True, cwd=tmp_path)
    assert dashboard.returncode != 0
    assert 'pip install "opusclip-lib[dashboard]"' in dashboard.stderr
    page = subprocess.run([str(python), "-c", "from importlib.resources import files; "
                           "print((files('opusclip_lib.dashboard') / 'static').joinpath("
                           "'board.js').is_file())"], capture_output=True, text=True, check=True)
    assert page.stdout.strip() == "True"  # the page's files are package data too
