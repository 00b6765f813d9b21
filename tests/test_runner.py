"""`opusclip run`: executes notebooks in fresh kernels and writes a results page."""

from __future__ import annotations

import asyncio

import nbformat
import psutil
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from opusclip_lib import cli, runner


def _notebook(tmp_path, name: str, code: str):
    path = tmp_path / name
    nb = new_notebook(cells=[new_markdown_cell("# A tiny notebook"), new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_execute_writes_the_notebook_and_its_figures(tmp_path) -> None:
    out = tmp_path / "build"
    for sub in ("notebooks", "figures"):
        (out / sub).mkdir(parents=True)
    code = ("import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
            "%matplotlib inline\nplt.plot([1, 2]); plt.show()")
    result = runner.execute(_notebook(tmp_path, "00_tiny.ipynb", code), out, timeout_s=60)
    assert result.ok
    assert result.title == "A tiny notebook"
    assert (out / "notebooks" / "00_tiny.ipynb").exists()
    assert [p.name for p in result.figures] == ["00_tiny_01.png"]

    failing = runner.execute(_notebook(tmp_path, "01_fail.ipynb", "1 / 0"), out, timeout_s=60)
    assert not failing.ok
    assert "ZeroDivisionError" in failing.error

    index = runner.write_index([result, failing], out, "postgresql://me:secret@db/test",
                               site_built=True)
    page = index.read_text()
    assert 'href="site/00_tiny.html"' in page
    assert "failed" in page
    assert "secret" not in page
    assert "me:***@db" in page
    without_site = runner.write_index([result], out, "sqlite://", site_built=False).read_text()
    assert 'href="notebooks/00_tiny.ipynb"' in without_site


def test_cli_lists_benchmarks_on_bad_name(capsys) -> None:
    try:
        cli.main(["bench", "no-such-bench"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "bench needs one of" in capsys.readouterr().err


def test_kernels_talk_over_unix_sockets_not_loopback_tcp(tmp_path, capfd) -> None:
    """Over TCP, ipykernel warns on every kernel that its traffic is unencrypted."""
    out = tmp_path / "build"
    for sub in ("notebooks", "figures"):
        (out / sub).mkdir(parents=True)
    code = ("import json, ipykernel\n"
            "print(json.load(open(ipykernel.get_connection_file()))['transport'])")
    result = runner.execute(_notebook(tmp_path, "00_transport.ipynb", code), out, timeout_s=60)
    assert result.ok, result.error
    executed = nbformat.read(out / "notebooks" / "00_transport.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"].strip() == "ipc"
    assert "running over TCP" not in capfd.readouterr().err


def test_execute_saves_a_text_progress_bar_as_its_last_state(tmp_path) -> None:
    out = tmp_path / "build"
    for sub in ("notebooks", "figures"):
        (out / sub).mkdir(parents=True)
    code = ("import sys, time\nfor n in range(3):\n"
            "    sys.stderr.write(f'\\rdone {n}/2'); sys.stderr.flush(); time.sleep(0.05)\n"
            "_ = sys.stderr.write('\\n')")
    result = runner.execute(_notebook(tmp_path, "02_bar.ipynb", code), out, timeout_s=60)
    assert result.ok
    saved = nbformat.read(out / "notebooks" / "02_bar.ipynb", as_version=4)
    outputs = saved.cells[1].outputs
    assert [(o.output_type, o.get("name")) for o in outputs] == [("stream", "stderr")]
    assert outputs[0].text == "done 2/2\n"


def test_the_next_kernel_starts_while_a_notebook_runs_and_none_outlives_the_run(tmp_path) -> None:
    """``opusclip run`` starts each notebook's kernel during the one before, and stops every
    kernel it started, in order, the results in the notebooks' order."""
    out = tmp_path / "build"
    for sub in ("notebooks", "figures"):
        (out / sub).mkdir(parents=True)
    age = ("import os, time, psutil\nprint(os.getpid(), "
           "round(time.time() - psutil.Process().create_time(), 1))")
    first = _notebook(tmp_path, "00_slow.ipynb", f"{age}\ntime.sleep(2)")
    second = _notebook(tmp_path, "01_next.ipynb", age)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    results = asyncio.run(runner.execute_all([first, second], out, timeout_s=60))
    assert [r.name for r in results] == ["00_slow", "01_next"]
    assert all(r.ok for r in results)
    pids, ages = zip(*(
        map(float, nbformat.read(out / "notebooks" / f"{r.name}.ipynb", as_version=4)
            .cells[1].outputs[0]["text"].split()) for r in results), strict=True)
    assert pids[0] != pids[1]  # a fresh kernel each
    assert ages[1] >= 1.5  # started while the first notebook slept
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert not (after - before)


def test_a_kernel_has_the_libraries_imported_and_nothing_in_its_history(tmp_path) -> None:
    out = tmp_path / "build"
    for sub in ("notebooks", "figures"):
        (out / sub).mkdir(parents=True)
    code = "import sys\nprint('opusclip_lib.workflow' in sys.modules, len(In))"
    result = runner.execute(_notebook(tmp_path, "00_warm.ipynb", code), out, timeout_s=60)
    assert result.ok, result.error
    cell = nbformat.read(out / "notebooks" / "00_warm.ipynb", as_version=4).cells[1]
    assert cell.execution_count == 1  # the warm-up was silent
    assert cell.outputs[0]["text"].split() == ["True", "2"]  # In[0] is "", In[1] this cell


def test_lanes_run_side_by_side_each_in_its_own_work_folder(tmp_path, monkeypatch) -> None:
    for name in runner.SHARED_SERVERS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPUSCLIP_WORK_DIR", str(tmp_path / "work"))
    lanes = runner.lane_environments(2)
    assert len({env["OPUSCLIP_WORK_DIR"] for env in lanes}) == 2
    out = tmp_path / "build"
    for sub in ("notebooks", "figures"):
        (out / sub).mkdir(parents=True)
    code = ("import time\nfrom opusclip_lib import config\ntime.sleep(1)\n"
            "print(config.database_url())")
    paths = [_notebook(tmp_path, f"0{n}_lane.ipynb", code) for n in range(3)]
    results = asyncio.run(runner.execute_all(paths, out, timeout_s=60, lane_envs=lanes))
    assert [r.name for r in results] == ["00_lane", "01_lane", "02_lane"]
    urls = [nbformat.read(out / "notebooks" / f"{r.name}.ipynb", as_version=4)
            .cells[1].outputs[0]["text"].strip() for r in results]
    assert len(set(urls[:2])) == 2  # the first two ran at once, on different databases
    assert all("/lane-" in url for url in urls)


def test_one_lane_when_a_server_is_shared(monkeypatch) -> None:
    monkeypatch.setenv("OPUSCLIP_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert runner.lane_environments(2) == [None]
