"""A worker's garbage-collector settings hold inside the block and are undone after it."""

from __future__ import annotations

import gc

from opusclip_lib.workflow.collector import YOUNG_THRESHOLD, worker_collector


def test_the_worker_settings_apply_inside_and_are_restored_after() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with worker_collector():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > frozen_before  # start-up's objects left out
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen_before
