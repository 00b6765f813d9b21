"""The browser tests' gate: Debian's Chromium and its driver, never a download."""

from __future__ import annotations

import os

import pytest

from opusclip_lib.dashboard import browser


def require_chromium() -> None:
    """Skip when Debian's Chromium or its driver is missing; fail instead under ``CI=true``."""
    missing = browser.missing()
    if missing:
        reason = (f"{', '.join(missing)} missing: apt-get install chromium chromium-driver "
                  "(.ci/run does)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
