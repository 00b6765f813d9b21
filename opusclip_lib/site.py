"""The static site of the executed notebooks: ``make run`` ends by building it in ``build/site/``.

Sphinx with myst-nb and sphinx-book-theme (configuration in ``docs/conf.py``) renders the
notebooks ``opusclip run`` executed into ``build/notebooks/``, from their stored outputs, with
no network access. Each page says how long its notebook ran; a run report gives the machine,
the database and links to the benchmark charts and the profile when they exist.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbformat.v4 import new_markdown_cell

from opusclip_lib import config

if TYPE_CHECKING:
    from opusclip_lib.runner import NotebookResult

DOCS_DIR = config.PROJECT_ROOT / "docs"
NOTEBOOK_DIR = config.PROJECT_ROOT / "notebooks"
CONTENTS = "index.ipynb"
REPORT = "run_report"
SHARED_FILES = ("binder-badge.svg",)  # files the notebooks' own cells point at


def machine_description() -> str:
    """One line on the machine the notebooks ran on: CPU model and count, memory, OS, Python."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM"
    return (f"{os.cpu_count()} x {cpu}{memory}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def _staged_notebook(result: NotebookResult, source: Path) -> nbformat.NotebookNode:
    """The executed notebook with a line saying how long it ran (in the site's copy only)."""
    notebook = nbformat.read(source, as_version=4)
    status = "" if result.ok else f" It **failed**: `{result.error}`."
    note = new_markdown_cell(f"*Executed by `make run` in {result.seconds:.1f} s; see the "
                             f"[run report]({REPORT}.md) for the machine.*{status}")
    notebook.cells.insert(1 if notebook.cells else 0, note)
    return notebook


def _contents(names: Sequence[str]) -> nbformat.NotebookNode:
    """The contents notebook with a hidden toctree, which gives the site its navigation."""
    notebook = nbformat.read(NOTEBOOK_DIR / CONTENTS, as_version=4)
    entries = "\n".join([*names, REPORT])
    notebook.cells.append(new_markdown_cell(
        f"```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{entries}\n```"))
    return notebook


def _report(results: Sequence[NotebookResult], database: str, charts: Sequence[str],
            profiles: Sequence[str]) -> str:
    rows = "\n".join(
        f"| [{_cell(r.title)}]({r.name}.ipynb) | {r.seconds:.1f} s | "
        f"{'ok' if r.ok else 'failed: ' + _cell(r.error or '')} |" for r in results)
    total = sum(r.seconds for r in results)
    lines = ["# Run report", "",
             f"{len(results)} notebooks, {sum(r.ok for r in results)} ok, {total:.1f} s in all.",
             "", f"- **Machine:** {machine_description()}",
             f"- **Database:** `{database}`", "",
             "| notebook | run time | status |", "| --- | --- | --- |", rows, "",
             "## Benchmarks", ""]
    if charts:
        lines += [f"![{Path(c).stem}](bench/{c})\n" for c in charts]
    else:
        lines.append("No benchmark charts yet: `make bench` writes them to `build/bench/`.")
    lines += ["", "## Profile", ""]
    if profiles:
        lines += [f"- <a href=\"profile/{p}\">{p}</a>" for p in profiles]
    else:
        lines.append("No profile yet: it appears here when `build/profile*.html` exists.")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def build(results: Sequence[NotebookResult], out_dir: Path, database: str) -> Path:
    """Build ``out_dir/site`` from the executed notebooks in ``out_dir/notebooks``; return its
    home page. ``database`` is shown as given (redact passwords first). Raises ``RuntimeError``
    if Sphinx fails."""
    source = out_dir / "site-src"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for result in results:
        nbformat.write(_staged_notebook(result, out_dir / "notebooks" / f"{result.name}.ipynb"),
                       source / f"{result.name}.ipynb")
    nbformat.write(_contents([r.name for r in results]), source / CONTENTS)
    for name in SHARED_FILES:
        shutil.copy2(NOTEBOOK_DIR / name, source / name)
    charts = sorted(p.name for p in (out_dir / "bench").glob("*.png"))
    if charts:
        shutil.copytree(out_dir / "bench", source / "bench", dirs_exist_ok=True)
    profiles = sorted(out_dir.glob("profile*.html")) + sorted(out_dir.glob("profile/*.html"))
    extra = source / "_extra"
    (extra / "profile").mkdir(parents=True)
    for profile in profiles:
        shutil.copy2(profile, extra / "profile" / profile.name)
    (source / f"{REPORT}.md").write_text(
        _report(results, database, charts, [p.name for p in profiles]), encoding="utf-8")
    site = out_dir / "site"
    # In its own process: Sphinx keeps global state and its own warning filters.
    status = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c",
                             str(DOCS_DIR), "-D", f"html_extra_path={extra}", str(source),
                             str(site)], check=False).returncode
    if status != 0:
        raise RuntimeError(f"sphinx-build exited with {status}; see the messages above")
    return site / "index.html"
