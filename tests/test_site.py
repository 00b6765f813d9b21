"""The static site ``make run`` builds, checked in a real headless Chromium (Debian's ``chromium``
and ``chromium-driver``; nothing is downloaded at run time).

The site is built from a small fixture of executed notebooks (text, a table, a figure, the
navigation cells), served on loopback, and every page is opened: no console error, every
same-site link and image answers, search finds a notebook, and the home page is screenshotted.
Without Chromium the browser test skips with the reason; under ``CI=true`` it fails.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import io
import shutil
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

import matplotlib
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from opusclip_lib import config, site
from opusclip_lib.dashboard import browser as chromium
from opusclip_lib.runner import NotebookResult
from tests.chromium import require_chromium

matplotlib.use("agg")
import matplotlib.pyplot as plt

_spec = importlib.util.spec_from_file_location(
    "notebook_nav", config.PROJECT_ROOT / "scripts" / "notebook_nav.py")
nav = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nav)


def _png() -> str:
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([0, 1, 2], [1, 3, 2])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _lesson(number: str, topic: str, png: str) -> nbformat.NotebookNode:
    chart = new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
    table = new_output("execute_result", execution_count=2, data={
        "text/html": "<table><tr><th>stage</th><th>seconds</th></tr>"
                     "<tr><td>download</td><td>0.25</td></tr></table>",
        "text/plain": "stage seconds"})
    return new_notebook(cells=[
        new_markdown_cell(f"# {number} · {topic}\n\nWe learn about the **semaphore** here."),
        new_code_cell("print('waiting')", execution_count=1,
                      outputs=[new_output("stream", name="stdout", text="waiting\n")]),
        new_code_cell("table", execution_count=2, outputs=[table]),
        new_code_cell("chart()", execution_count=3, outputs=[chart]),
        new_markdown_cell("## Exercises\n\n1. Try it."),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Iterator[Path]:
    """Two executed lessons, their contents page, a benchmark chart and a profile, built."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _build(tmp_path_factory.mktemp("site"), monkeypatch)


def _build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sources, out = tmp_path / "notebooks", tmp_path / "build"
    (out / "notebooks").mkdir(parents=True)
    (out / "bench").mkdir()
    sources.mkdir()
    monkeypatch.setattr(nav, "NOTEBOOK_DIR", sources)
    monkeypatch.setattr(site, "NOTEBOOK_DIR", sources)
    shutil.copy2(config.PROJECT_ROOT / "notebooks" / nav.BADGE, sources / nav.BADGE)
    png = _png()
    lessons = {"00_first": _lesson("00", "First steps", png),
               "10_second": _lesson("10", "Second steps", png)}
    titles = {stem: nav.title(nb, stem) for stem, nb in lessons.items()}
    order = list(lessons)
    for stem, notebook in lessons.items():
        entry = {"after": order[:order.index(stem)], "know": "Python.",
                 "questions": ["Why?", "How?", "When?"]}
        nbformat.write(nav.with_navigation(notebook, stem, entry, order, titles),
                       out / "notebooks" / f"{stem}.ipynb")
    nbformat.write(nav.contents(order, titles), sources / nav.CONTENTS)
    (out / "bench" / "api.png").write_bytes(base64.b64decode(png))
    (out / "profile.html").write_text("<!doctype html><title>profile</title><p>frames</p>")
    results = [NotebookResult(stem, titles[stem], 1.25) for stem in order]
    return site.build(results, out, "sqlite:///work/opusclip.db").parent


def test_site_has_every_page_the_run_report_and_no_execution(built_site) -> None:
    pages = {p.name for p in built_site.glob("*.html")}
    assert {"index.html", "00_first.html", "10_second.html", "run_report.html",
            "search.html"} <= pages
    report = (built_site / "run_report.html").read_text(encoding="utf-8")
    assert site.machine_description().split(",")[0] in report
    assert "1.2 s" in (built_site / "00_first.html").read_text(encoding="utf-8")
    assert (built_site / "profile" / "profile.html").exists()


@pytest.fixture(scope="module")
def served(built_site) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    with _Server(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}/"
        server.shutdown()
        thread.join()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A browser that drops a request it no longer needs is not an error of the site."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_missing_chromium_skips_but_fails_under_ci(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(chromium, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no-chromium missing"):
        require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but"):
        require_chromium()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    require_chromium()
    with chromium.headless_chromium(tmp_path_factory.mktemp("chromium-profile"), width=1280,
                                    height=900) as driver:
        yield driver


def _same_site(base: str, url: str) -> bool:
    return urlsplit(url).netloc == urlsplit(base).netloc


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_every_page_loads_with_working_links_and_images(served, built_site, browser,
                                                        tmp_path) -> None:
    pages = sorted(p.name for p in built_site.glob("*.html"))
    console_errors, broken, visited = [], set(), 0
    for page in pages:
        browser.get(urljoin(served, page))
        visited += 1
        console_errors += [f"{page}: {entry['message']}" for entry in browser.get_log("browser")
                           if entry["level"] == "SEVERE"]
        links = browser.execute_script(
            "return [...document.querySelectorAll('a[href]')].map(a => a.href)"
            ".concat([...document.images].map(i => i.src))"
            ".concat([...document.querySelectorAll('link[href], script[src]')]"
            ".map(e => e.href || e.src))")
        for url in {urldefrag(u).url for u in links if _same_site(served, u)}:
            if _status(url) != 200:
                broken.add(f"{page} -> {url}")
        unloaded = browser.execute_script(
            "return [...document.images].filter(i => i.complete && i.naturalWidth === 0)"
            ".map(i => i.src)")
        broken.update(f"{page} image {src}" for src in unloaded)
    assert visited == len(pages)
    assert not console_errors, "\n".join(console_errors)
    assert not broken, "\n".join(sorted(broken))

    browser.get(served)
    screenshot = tmp_path / "home.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_search_finds_a_notebook(served, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(urljoin(served, "search.html?q=semaphore"))
    found = WebDriverWait(browser, 20).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#search-results li a"))
    assert {a.get_attribute("href").rsplit("/", 1)[-1].split("?")[0] for a in found} >= {
        "00_first.html", "10_second.html"}
