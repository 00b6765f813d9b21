"""``opusclip run``: execute every notebook offline and write a results page under ``build/``.

Each notebook runs in a fresh kernel (the way a learner runs it top to bottom), its executed copy
goes to ``build/notebooks/`` and its charts to ``build/figures/``. Then ``opusclip_lib.site``
builds ``build/site/``, a browsable static site of the same notebooks, and ``build/index.html``
shows every chart with run times on one page, linking each notebook's page of the site.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from tqdm import tqdm
from traitlets.config import Config

from opusclip_lib import config, site

NOTEBOOK_DIR = config.PROJECT_ROOT / "notebooks"


@dataclass
class NotebookResult:
    name: str
    title: str
    seconds: float
    error: str | None = None
    figures: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def discover(pattern: str = "*") -> list[Path]:
    """Numbered notebooks (``00_...``, ``10_...``) in reading order."""
    return sorted(p for p in NOTEBOOK_DIR.glob(f"{pattern}.ipynb") if p.name[:2].isdigit())


def _title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _save_figures(notebook: nbformat.NotebookNode, stem: str, figure_dir: Path) -> list[Path]:
    paths = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                path = figure_dir / f"{stem}_{len(paths) + 1:02d}.png"
                path.write_bytes(base64.b64decode(png))
                paths.append(path)
    return paths


SHUTDOWN_WAIT_S = 2.0
"""jupyter_client waits half of this for a kernel to exit after its shutdown request, then sends
SIGTERM. A kernel normally exits well within that; now and then one ignores the request, and
with jupyter_client's default wait such a notebook sat idle for seconds before the next began."""


def kernel_config(socket_dir: str) -> Config:
    """Kernels that talk over unix sockets in ``socket_dir`` where there are any: over loopback
    TCP, ipykernel warns once per kernel that anyone on the machine could listen in. Unix socket
    paths are limited to ~100 bytes, so ``socket_dir`` must be short (``/tmp/...``)."""
    manager: dict[str, object] = {"shutdown_wait_time": SHUTDOWN_WAIT_S}
    if os.name == "posix":
        manager |= {"transport": "ipc", "ip": os.path.join(socket_dir, "kernel")}
    return Config(KernelManager=manager)


def notebook_client(notebook: nbformat.NotebookNode, path: Path, timeout_s: int,
                    km: AsyncKernelManager | None = None) -> NotebookClient:
    """A client that runs ``notebook`` in a fresh local kernel, in the notebook's own folder
    (or in ``km``'s kernel, already started, which the caller then stops).

    Stream outputs are coalesced and their carriage returns applied, so a text progress bar
    (``tqdm``) is saved as its final line, not as every redraw."""
    return NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                          resources={"metadata": {"path": str(path.parent)}},
                          coalesce_streams=True, km=km)


def _socket_dir() -> str:
    """A new folder for a kernel's sockets, under ``/tmp`` where there is one (a short path:
    see :func:`kernel_config`)."""
    return tempfile.mkdtemp(prefix="oc-", dir="/tmp" if os.path.isdir("/tmp") else None)


HISTORY_IN_MEMORY = "--HistoryManager.hist_file=:memory:"  # as nbclient starts its kernels
KERNEL_READY_S = 60.0
WARM_UP = ("import matplotlib.pyplot, pandas, opusclip_lib.api, opusclip_lib.charts, "
           "opusclip_lib.db, opusclip_lib.sandbox, opusclip_lib.workflow")


@dataclass(frozen=True)
class Kernel:
    """A started kernel and the folder of its sockets (removed when it stops)."""

    manager: AsyncKernelManager
    socket_dir: str

    @classmethod
    async def start(cls, cwd: Path, env: Mapping[str, str] | None = None) -> Kernel:
        """A kernel in ``cwd``, with ``env`` as its environment (default: this process's)."""
        socket_dir = _socket_dir()
        manager = AsyncKernelManager(kernel_name="python3", config=kernel_config(socket_dir))
        kernel = cls(manager, socket_dir)
        try:
            await manager.start_kernel(extra_arguments=[HISTORY_IN_MEMORY], cwd=str(cwd),
                                       env=dict(env if env is not None else os.environ))
            await kernel._warm_up()
        except BaseException:
            await kernel.stop()
            raise
        return kernel

    async def _warm_up(self) -> None:
        """Import what every notebook imports, silently (no output, no execution count), so a
        notebook's first cell does not wait for it."""
        client = self.manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=KERNEL_READY_S)
            reply = await client.execute_interactive(WARM_UP, silent=True, store_history=False,
                                                     timeout=KERNEL_READY_S)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"the kernel could not import {WARM_UP!r}: {reply['content']}")
        finally:
            client.stop_channels()

    async def stop(self) -> None:
        try:
            if self.manager.has_kernel:
                await self.manager.shutdown_kernel()
        finally:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


async def _stop_once_started(starting: asyncio.Task[Kernel]) -> None:
    kernel = await starting
    await kernel.stop()


async def _execute(path: Path, kernel: Kernel, out_dir: Path, timeout_s: int) -> NotebookResult:
    """Run one notebook in ``kernel``; a failing cell is reported, not raised."""
    notebook = nbformat.read(path, as_version=4)
    client = notebook_client(notebook, path, timeout_s, km=kernel.manager)
    started = time.perf_counter()
    error = None
    try:
        await client.async_execute()
    except CellExecutionError as exc:
        error = str(exc).strip().splitlines()[-1]
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
    seconds = time.perf_counter() - started
    nbformat.write(notebook, out_dir / "notebooks" / path.name)
    figures = _save_figures(notebook, path.stem, out_dir / "figures")
    return NotebookResult(path.stem, _title(notebook, path.stem), seconds, error, figures)


async def _lane(queue: list[tuple[int, Path]], env: Mapping[str, str] | None, out_dir: Path,
                timeout_s: int, on_result: Callable[[NotebookResult], None],
                results: dict[int, NotebookResult], stopping: list[asyncio.Task[None]]) -> None:
    """Take notebooks from ``queue`` until it is empty, each in a fresh kernel, the next one
    started and warmed while the current notebook runs."""
    if not queue:
        return
    cwd = queue[0][1].parent  # a run's notebooks share one folder
    upcoming: asyncio.Task[Kernel] | None = asyncio.create_task(Kernel.start(cwd, env))
    try:
        while queue and upcoming is not None:
            index, path = queue.pop(0)
            kernel = await upcoming
            upcoming = asyncio.create_task(Kernel.start(cwd, env)) if queue else None
            try:
                results[index] = await _execute(path, kernel, out_dir, timeout_s)
            finally:
                stopping.append(asyncio.create_task(kernel.stop()))
            on_result(results[index])
    finally:
        if upcoming is not None:  # the queue emptied while it started
            stopping.append(asyncio.create_task(_stop_once_started(upcoming)))


async def execute_all(paths: Sequence[Path], out_dir: Path, timeout_s: int,
                      on_result: Callable[[NotebookResult], None] = lambda _: None, *,
                      lane_envs: Sequence[Mapping[str, str] | None] = (None,),
                      ) -> list[NotebookResult]:
    """Run ``paths``, each in a fresh kernel, on as many lanes as ``lane_envs`` (each lane's
    kernels get its environment; ``None``: this process's). Results come in ``paths`` order.

    A kernel takes a second or two to start, import the libraries and stop, and a notebook
    mostly waits: so each lane's next kernel starts and imports (:data:`WARM_UP`) while its
    current notebook runs, and a finished notebook's kernel stops in the background. Notebooks
    on one lane run one at a time: lanes that run side by side need their own work folder and
    database (:func:`lane_environments`). A result's ``seconds`` are its cells' run time.
    """
    queue = list(enumerate(paths))
    results: dict[int, NotebookResult] = {}
    stopping: list[asyncio.Task[None]] = []
    try:
        async with asyncio.TaskGroup() as lanes:
            for env in lane_envs:
                lanes.create_task(_lane(queue, env, out_dir, timeout_s, on_result, results,
                                        stopping))
    finally:
        await asyncio.gather(*stopping, return_exceptions=True)
    return [results[index] for index in range(len(paths))]


LANE_FOLDER = "lane-{}"
"""A lane's work folder inside the work folder, numbered from 1."""
SHARED_SERVERS = ("OPUSCLIP_DATABASE_URL", "OPUSCLIP_POSTGRES_URL", "OPUSCLIP_MYSQL_URL",
                  "OPUSCLIP_REDIS_URL", "OPUSCLIP_RABBITMQ_URL", "OPUSCLIP_NATS_URL")


def lane_environments(lanes: int) -> list[dict[str, str] | None]:
    """One environment per lane, each with a work folder of its own (so a SQLite database of
    its own); a single lane when a server is set, since every notebook would share it."""
    if lanes <= 1 or any(os.environ.get(name) for name in SHARED_SERVERS):
        return [None]
    root = config.work_dir()
    return [{**os.environ, "OPUSCLIP_WORK_DIR": str(root / LANE_FOLDER.format(n))}
            for n in range(1, lanes + 1)]


def execute(path: Path, out_dir: Path, timeout_s: int) -> NotebookResult:
    """Run one notebook in a fresh kernel; a failing cell is reported, not raised."""
    return asyncio.run(execute_all([path], out_dir, timeout_s))[0]


def write_index(results: list[NotebookResult], out_dir: Path, database_url: str, *,
                site_built: bool) -> Path:
    """The one-page summary; each title links the notebook's page of the site, or, without a
    site, the executed notebook itself."""
    rows = []
    for r in results:
        href = f"site/{r.name}.html" if site_built else f"notebooks/{r.name}.ipynb"
        status = "ok" if r.ok else f"failed: {html.escape(r.error or '')}"
        images = "".join(
            f'<a href="figures/{p.name}"><img src="figures/{p.name}" loading="lazy"></a>'
            for p in r.figures
        )
        rows.append(
            f'<section><h2><a href="{href}">{html.escape(r.title)}</a></h2>'
            f'<p class="meta">{r.name}.ipynb &middot; {r.seconds:.1f} s &middot; {status}</p>'
            f'<div class="figures">{images}</div></section>'
        )
    total = sum(r.seconds for r in results)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Video-OpusClip results</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
.meta{{color:#555}} .figures img{{height:180px;margin:4px;border:1px solid #ddd}}</style></head>
<body><h1>Video-OpusClip: what the notebooks measured</h1>
<p>{len(results)} notebooks, {sum(r.ok for r in results)} ok, {total:.1f} s in all.
Database: <code>{html.escape(redact(database_url))}</code>.
Generated {time.strftime("%Y-%m-%d %H:%M:%S")}.</p>
{''.join(rows)}</body></html>"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def redact(url: str) -> str:
    """Hide a password in a database URL before it goes on a page."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        user = rest.split("@", 1)[0].split(":", 1)[0]
        rest = f"{user}:***@{rest.split('@', 1)[1]}"
    return f"{scheme}{sep}{rest}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opusclip run", description=__doc__)
    parser.add_argument("--only", default="*", help="glob of notebook names, e.g. '1*'")
    parser.add_argument("--out", type=Path, default=config.PROJECT_ROOT / "build")
    parser.add_argument("--timeout", dest="timeout_s", type=int, default=600,
                        help="seconds per cell")
    parser.add_argument("--no-site", action="store_true", help="skip the static site")
    parser.add_argument("--lanes", type=int, default=2,
                        help="notebooks run side by side, each lane with its own work folder "
                             "(1 when a server variable is set: they would share it)")
    args = parser.parse_args(argv)

    notebooks = discover(args.only)
    if not notebooks:
        parser.error(f"no notebook matches {args.only!r} in {NOTEBOOK_DIR}")
    for sub in ("notebooks", "figures"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    lane_envs = lane_environments(args.lanes)
    if len(lane_envs) == 1:
        database_url = config.database_url()
        os.environ.setdefault("OPUSCLIP_DATABASE_URL", database_url)
    else:
        database_url = config.database_url(config.work_dir() / LANE_FOLDER.format("N"))
    print(f"Running {len(notebooks)} notebooks on {redact(database_url)}, "
          f"{len(lane_envs)} at a time")

    with tqdm(total=len(notebooks), unit="notebook") as bar:

        def show(result: NotebookResult) -> None:
            mark = "ok" if result.ok else f"FAILED ({result.error})"
            bar.write(f"{result.name:<40} {result.seconds:6.1f} s  {mark}")
            bar.update()

        results = asyncio.run(execute_all(notebooks, args.out, args.timeout_s, show,
                                          lane_envs=lane_envs))
    site_failed = False
    home = None
    if not args.no_site:
        try:
            home = site.build(results, args.out, redact(database_url))
        except RuntimeError as error:
            print(f"The site was not built: {error}")
            site_failed = True
    index = write_index(results, args.out, database_url, site_built=home is not None)
    print(f"\nResults: {index}\nExecuted notebooks: {args.out / 'notebooks'}")
    if home is not None:
        print(f"Site: {home} (open it in a browser, or serve it: "
              f"python -m http.server -d {home.parent})")
    failed = [r.name for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}")
    return 1 if failed or site_failed else 0
