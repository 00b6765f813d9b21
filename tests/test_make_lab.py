"""``make lab`` starts a JupyterLab server that answers, also as root (containers often run as
root, where Jupyter refuses to start without ``--allow-root``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from opusclip_lib import config

STARTUP_GUARD_S = 120  # only catches a server that never comes up; not a speed target


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _api(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.slow
def test_make_lab_serves_the_api(tmp_path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port = _free_port()
    flags = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    # -o: use the installed venv as it is (never reinstall from a test).
    with open(tmp_path / "lab.log", "wb") as log:
        server = subprocess.Popen(
            ["make", "-s", "-o", ".venv/.installed-stamp", "lab", f"LAB_FLAGS={flags}"],
            cwd=config.PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_GUARD_S
        answer = None
        while answer is None and server.poll() is None and time.monotonic() < deadline:
            answer = _api(f"http://127.0.0.1:{port}/api")
            if answer is None:
                time.sleep(0.5)  # polling an external process; nothing to await instead
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    log_text = (tmp_path / "lab.log").read_text(errors="replace")
    assert answer is not None, log_text[-2000:]
    assert "version" in answer
