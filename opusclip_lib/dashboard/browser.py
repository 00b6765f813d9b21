"""Debian's headless Chromium through Selenium (``chromium`` and ``chromium-driver``): nothing
is downloaded at run time. Used by the dashboard's browser test and its benchmark."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def missing() -> list[str]:
    """The browser's files that are not installed (``apt-get install chromium
    chromium-driver`` brings them)."""
    return [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]


@contextmanager
def headless_chromium(profile_dir: Path, *, width: int = 1400,
                      height: int = 900) -> Iterator[Any]:
    """A Selenium ``webdriver.Chrome`` on a fresh profile, its console log readable with
    ``driver.get_log("browser")``; quit on exit."""
    if missing():
        raise RuntimeError(f"{', '.join(missing())} missing: apt-get install chromium "
                           "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}", f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    previous = os.environ.get("SE_OFFLINE")
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download anything
    try:
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                                  options=options)
    finally:
        if previous is None:
            os.environ.pop("SE_OFFLINE")
        else:
            os.environ["SE_OFFLINE"] = previous
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
