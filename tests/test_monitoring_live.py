"""The live status table: a watched batch ends with the right state per job, the chart shows
counts by status over time, and the notebook display redraws in place at most 5 times a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from opusclip_lib.charts.monitoring import feed_latency
from opusclip_lib.db import connect, jobs
from opusclip_lib.monitoring import LiveDisplay, LiveStatus, live, open_feed, snapshot, watch
from opusclip_lib.resilience.fakes import FakeClock

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


async def test_watching_a_batch_ends_with_every_job_s_state(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with connect(f"sqlite:///{tmp_path}/live.db") as db:
        earlier = await jobs.enqueue(db, "pipeline")  # before watching: seen via the snapshot
        board = LiveStatus()
        board.apply_all(await snapshot(db))
        async with open_feed(db) as feed, watch(feed, board) as watched:
            assert watched is board
            batch = [await jobs.enqueue(db, "pipeline") for _ in range(3)]
            for job in await jobs.claim(db, "w", limit=4):
                if job.id == batch[0].id:
                    await jobs.fail(db, job.id, code="boom", message="no audio", worker="w")
                    continue
                for status in ("transcribing", "analyzing", "rendering", "completed"):
                    await jobs.advance(db, job.id, status, worker="w", stage=status)
    assert board.counts() == {"completed": 3, "failed": 1}
    table = board.table()
    assert list(table.index) == [earlier.id, *(job.id for job in batch)]
    assert list(table["status"]) == ["completed", "failed", "completed", "completed"]
    assert table.loc[earlier.id, "progress"] == 1.0
    assert board.table(recent=1).index[0] == batch[-1].id  # the last job to change
    history = board.history()
    assert history.iloc[-1][["completed", "failed"]].tolist() == [3, 1]
    assert history["seconds"].is_monotonic_increasing
    lines = {line.get_label() for line in board.chart().get_lines()}
    assert {"pending", "downloading", "completed", "failed"} <= lines
    assert "HTML object" in capsys.readouterr().out  # shown, then updated in place
    feed_latency(feed.recorder.frame("feed"))  # the latency chart draws what was measured


def test_display_redraws_in_place_at_most_five_times_a_second(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()  # drawing takes no time on it, so only the rate limit spaces redraws
    monkeypatch.setattr(live, "time", SimpleNamespace(monotonic=clock))
    board = LiveStatus()
    view = LiveDisplay(board, max_per_second=5)
    view.show()
    for n in range(60):  # a burst of updates over 0.6 s
        board.apply({"job_id": n % 7, "status": "pending" if n < 30 else "completed"})
        view.refresh()
        clock.advance(0.01)
    assert view.redraws == 3  # at 0, 0.2 and 0.4 s
    drawn = view.redraws
    board.apply({"job_id": 1, "status": "failed"})
    assert view.refresh(force=True)  # the final state is drawn whatever the throttle says
    board.apply({"job_id": 2, "status": "failed"})
    assert not view.refresh()  # drawn a moment ago: throttled
    assert view.refresh(force=True)
    assert not view.refresh(force=True)  # nothing changed since
    assert view.redraws == drawn + 2
    assert capsys.readouterr().out.count("HTML object") == 1 + view.redraws


def test_an_empty_board_renders() -> None:
    board = LiveStatus()
    assert board.table().empty
    assert board.counts() == {}
    assert len(board) == 0
    assert isinstance(board.history(), pd.DataFrame)
    board.chart()
