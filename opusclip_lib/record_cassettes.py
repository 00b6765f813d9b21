"""``python -m opusclip_lib.cassettes record``: re-record every shipped cassette by running the code
that replays it.

A cassette folder is named after the file that uses it (``cassettes/20_api_basics/`` belongs to
``notebooks/20_api_basics.ipynb``, ``cassettes/test_cassettes/`` to
``tests/test_cassettes.py``), and a file uses cassettes when it calls ``api_clients(``. For each
such file the command

1. runs it with ``OPUSCLIP_RECORD`` set (``sandbox`` or ``live``) and ``OPUSCLIP_CASSETTE_DIR``
   pointing at a scratch folder: notebooks in a fresh kernel (nbclient), solution scripts with
   Python, test files with pytest. So a cassette holds exactly the requests that code makes;
2. swaps its folder in ``cassettes/`` for the new recording (only if the run succeeded);
3. runs it again in replay mode, as the check that the new cassettes answer every request.
   Notebooks are saved with those outputs, so what is committed matches the cassettes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from opusclip_lib import config
from opusclip_lib.cassettes import KEY_VARIABLES, RECORD_VARIABLE, RecordMode, record_mode
from opusclip_lib.errors import OpusClipError

SOURCE_PATTERNS = ("notebooks/*.ipynb", "notebooks/solutions/*.py", "tests/test_*.py")
USES_CASSETTES = "api_clients("
CASSETTE_DIR_VARIABLE = "OPUSCLIP_CASSETTE_DIR"
NOTEBOOK_TIMEOUT = 600


class RecordingFailedError(OpusClipError, RuntimeError):
    """A source failed to run; its cassettes were left as they were."""


def sources() -> dict[str, Path]:
    """Files that use cassettes, by the name of their cassette folder (the file's stem)."""
    found = {}
    for pattern in SOURCE_PATTERNS:
        for path in sorted(config.PROJECT_ROOT.glob(pattern)):
            if USES_CASSETTES in path.read_text(encoding="utf-8"):
                found[path.stem] = path
    return found


def run_source(path: Path, environment: Mapping[str, str], *, save: bool = False) -> None:
    """Run a notebook, script or test file with ``environment`` added to ours."""
    env = {**os.environ, **environment}
    if path.suffix == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(notebook, timeout=NOTEBOOK_TIMEOUT, kernel_name="python3",
                                record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute(env=env)
        except CellExecutionError as exc:
            raise RecordingFailedError(f"{path.name}: {str(exc).strip().splitlines()[-1]}") from exc
        if save:
            nbformat.write(notebook, path)
        return
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)] \
        if path.name.startswith("test_") else [sys.executable, str(path)]
    finished = subprocess.run(command, env=env, cwd=config.PROJECT_ROOT, capture_output=True,
                              text=True, check=False)
    if finished.returncode != 0:
        tail = "\n".join((finished.stdout + finished.stderr).strip().splitlines()[-15:])
        raise RecordingFailedError(f"{path.name} exited with {finished.returncode}:\n{tail}")


def record(folder: str, path: Path, mode: RecordMode) -> None:
    """Record ``folder`` by running ``path``, install it, then replay it as a check."""
    library = config.cassette_dir()
    with tempfile.TemporaryDirectory(prefix="cassettes-") as scratch:
        run_source(path, {RECORD_VARIABLE: mode, CASSETTE_DIR_VARIABLE: scratch})
        made = sorted(p.name for p in Path(scratch).iterdir())
        if made != [folder]:
            raise RecordingFailedError(f"{path.name} recorded into {made or 'nothing'}; a file's "
                                  f"cassettes go in one folder named after it: {folder!r}")
        shutil.rmtree(library / folder, ignore_errors=True)
        shutil.copytree(Path(scratch) / folder, library / folder)
    try:
        run_source(path, {RECORD_VARIABLE: "none", CASSETTE_DIR_VARIABLE: str(library)},
                   save=True)
    except RecordingFailedError as exc:
        raise RecordingFailedError(
            f"recorded, but replaying the new cassettes failed: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opusclip_lib.cassettes",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    record_command = commands.add_parser(
        "record", help=f"re-record cassettes ({RECORD_VARIABLE}=sandbox or live)")
    record_command.add_argument("folders", nargs="*", help="cassette folders (default: all)")
    commands.add_parser("list", help="the files that use cassettes, by folder")
    args = parser.parse_args(argv)

    found = sources()
    if args.command == "list":
        for folder, path in found.items():
            print(f"{folder:<36} {path.relative_to(config.PROJECT_ROOT)}")
        return 0
    mode = record_mode()
    if mode == "none":
        parser.error(f"set {RECORD_VARIABLE}=sandbox (the local sandbox) or {RECORD_VARIABLE}=live")
    missing = [name for name in KEY_VARIABLES if mode == "live" and not os.environ.get(name)]
    unknown = sorted(set(args.folders) - set(found))
    if missing or unknown:
        parser.error(f"unknown folders {unknown} (see `list`)" if unknown
                     else f"live recording needs {', '.join(missing)}")
    failures = 0
    for folder in args.folders or list(found):
        started = time.perf_counter()
        try:
            record(folder, found[folder], mode)
        except RecordingFailedError as exc:
            failures += 1
            print(f"FAILED {folder}: {exc}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - started
        print(f"recorded {folder} ({mode}) and replayed it in {seconds:.0f} s")
    return 1 if failures else 0
