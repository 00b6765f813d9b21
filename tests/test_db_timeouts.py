"""The deadlines of :mod:`opusclip_lib.db.timeouts`: validated, and carried to the backend."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from opusclip_lib.db import ConfigurationError, Timeouts, connect


@pytest.mark.parametrize("value", [0, -1, math.nan])
def test_a_deadline_must_be_positive(value: float) -> None:
    with pytest.raises(ConfigurationError, match="statement_s"):
        Timeouts(statement_s=value)


async def test_connect_hands_the_deadlines_to_the_backend(tmp_path: Path) -> None:
    timeouts = Timeouts(statement_s=7, copy_s=70)
    async with connect(f"sqlite:///{tmp_path}/t.db", timeouts=timeouts) as db:
        assert db.backend.timeouts == timeouts


async def test_acquire_timeout_sets_acquire_s(tmp_path: Path) -> None:
    async with connect(f"sqlite:///{tmp_path}/t.db", timeouts=Timeouts(acquire_s=3),
                       acquire_timeout_s=0.5) as db:
        assert db.timeouts.acquire_s == 0.5
