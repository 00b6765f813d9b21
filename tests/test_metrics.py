from __future__ import annotations

import asyncio
import gc

import pytest

from opusclip_lib.metrics import Recorder, percentiles


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_measure_records_duration_and_labels() -> None:
    clock = FakeClock()
    recorder = Recorder(clock)
    clock.now += 1.0
    with recorder.measure("query", "insert_video", backend="sqlite") as labels:
        clock.now += 0.25
        labels["rows"] = 3
    (event,) = recorder.events()
    assert (event.start, event.seconds, event.ok) == (1.0, 0.25, True)
    assert event.labels == {"backend": "sqlite", "rows": 3}


def test_measure_records_failure_and_reraises() -> None:
    recorder = Recorder()
    with pytest.raises(KeyError), recorder.measure("http", "youtube.videos"):
        raise KeyError("boom")
    (event,) = recorder.events()
    assert not event.ok
    assert event.error == "KeyError"


async def test_measure_records_cancellation() -> None:
    recorder = Recorder()
    measuring = asyncio.Event()

    async def slow() -> None:
        with recorder.measure("task", "slow"):
            measuring.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow())
    await measuring.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.events()[0].error == "CancelledError"


def test_frame_has_base_columns_even_when_empty() -> None:
    frame = Recorder().frame()
    assert list(frame.columns) == ["kind", "name", "start", "end", "seconds", "ok", "error"]
    assert frame.empty


def test_frame_filters_by_kind_and_spreads_labels() -> None:
    recorder = Recorder()
    recorder.add("query", "a", seconds=0.1, rows=1)
    recorder.add("cache", "b", seconds=0.0, hit=True)
    frame = recorder.frame("query")
    assert list(frame["name"]) == ["a"]
    assert frame.loc[0, "rows"] == 1
    assert len(recorder) == 2


def test_percentiles_in_milliseconds() -> None:
    recorder = Recorder()
    for i in range(1, 101):
        recorder.add("query", "q", seconds=i / 1000)
    table = percentiles(recorder.frame(), "name")
    assert table.loc["q", "count"] == 100
    assert table.loc["q", "p50_ms"] == pytest.approx(50.5)
    assert table.loc["q", "p95_ms"] == pytest.approx(95.05)


def test_events_keep_their_order_and_labels_across_kinds() -> None:
    recorder = Recorder()
    recorder.add("http", "a", status=200)
    recorder.add("cache", "b", hit=True)
    recorder.add("http", "c", status=None, bytes=3)
    assert [(e.kind, e.name, e.labels) for e in recorder.events()] == [
        ("http", "a", {"status": 200}), ("cache", "b", {"hit": True}),
        ("http", "c", {"status": None, "bytes": 3})]
    assert [e.name for e in recorder.events("http")] == ["a", "c"]
    assert list(recorder.frame().columns) == [
        "kind", "name", "start", "end", "seconds", "ok", "error", "status", "hit", "bytes"]
    recorder.clear()
    assert len(recorder) == 0
    assert recorder.events() == []


def test_recorded_events_give_the_garbage_collector_nothing_to_walk() -> None:
    """Kept by column, 10,000 events add no GC-tracked object per event: a recorder that grew
    by one object per event made every collection slower, a fifth of the HTTP client's CPU."""
    recorder = Recorder()
    recorder.add("http", "warm-up", status=200, cached=False, request_id="r")
    gc.collect()
    before = len(gc.get_objects())
    for number in range(10_000):
        recorder.add("http", "youtube.videos.list", seconds=0.05, status=200, cached=False,
                     request_id=f"req-{number}")
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    assert len(recorder) == 10_001
