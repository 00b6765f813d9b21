"""The concurrency helpers keep their promises: order, limits, backpressure, clean failure."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from opusclip_lib.metrics import Recorder
from opusclip_lib.pipelines import (
    InFlight,
    Stage,
    fan_out,
    map_bounded,
    map_gather,
    map_sequential,
    map_task_group,
    run_pipeline,
    simulated,
    task_scope,
)

pytestmark = [
    pytest.mark.timeout(10),  # a helper that hangs must fail the test, not stall the run
    pytest.mark.looptime,  # the jobs' sleeps and the timeouts run on a fake loop clock: exact
]

Runner = Callable[[Callable[[int], Awaitable[Any]], list[int]], Awaitable[Any]]


async def passthrough(item: Any) -> Any:
    await asyncio.sleep(0)
    return item


def via_fan_out(func: Callable[[int], Awaitable[Any]], items: list[int]) -> Awaitable[Any]:
    """fan_out with one branch per item, so it fits the same tests as the map helpers."""
    return fan_out(None, {str(item): functools.partial(lambda i, _: func(i), item)
                          for item in items})


def via_pipeline(func: Callable[[int], Awaitable[Any]], items: list[int]) -> Awaitable[Any]:
    return run_pipeline(items, [Stage("relay", passthrough, workers=2),
                                Stage("work", func, workers=3)])


CONCURRENT: dict[str, Runner] = {
    "gather": map_gather,
    "task_group": map_task_group,
    "bounded": functools.partial(map_bounded, limit=3),
    "fan_out": via_fan_out,
    "pipeline": via_pipeline,
}
FAIL_FIRST_ERROR = {name: run for name, run in CONCURRENT.items() if name != "task_group"}
EVERY = {"sequential": map_sequential, **CONCURRENT}


class Probe:
    """A job that sleeps "forever" (or fails, for one item) and notes what happened to it."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.gauge = InFlight()
        self.started = asyncio.Event()
        self.cancelled: list[int] = []
        self.fail_on = fail_on

    async def job(self, item: int) -> int:
        with self.gauge:
            self.started.set()
            try:
                if item == self.fail_on:
                    await asyncio.sleep(0.02)
                    raise ValueError(f"item {item} failed")
                await asyncio.sleep(10)
                return item
            except asyncio.CancelledError:
                self.cancelled.append(item)
                raise


def leftover_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


@pytest.mark.parametrize("name", ["sequential", "gather", "task_group", "bounded"])
async def test_results_follow_input_order_not_finishing_order(name: str) -> None:
    async def later_for_small(item: int) -> int:
        await asyncio.sleep((10 - item) * 0.003)
        return item * 10

    assert await EVERY[name](later_for_small, list(range(10))) == [i * 10 for i in range(10)]
    assert not leftover_tasks()


@pytest.mark.parametrize(("name", "expected_peak"),
                         [("sequential", 1), ("gather", 12), ("task_group", 12), ("bounded", 3)])
async def test_how_many_calls_overlap(name: str, expected_peak: int) -> None:
    gauge = InFlight()
    await EVERY[name](gauge.wrap(functools.partial(asyncio.sleep, 0.01)), list(range(12)))
    assert (gauge.peak, gauge.total, gauge.current) == (expected_peak, 12, 0)


async def test_map_bounded_never_exceeds_its_limit_and_reads_items_lazily() -> None:
    gauge = InFlight()
    pulled = finished = 0
    worst_lag = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for item in range(60):
            pulled += 1
            yield item

    async def job(item: int) -> int:
        nonlocal finished, worst_lag
        worst_lag = max(worst_lag, pulled - finished)
        with gauge:
            await asyncio.sleep(0.001 * (item % 4))
        finished += 1
        return item

    assert await map_bounded(job, items(), limit=4) == list(range(60))
    assert gauge.peak == 4
    assert worst_lag <= 4 + 1  # the slots, plus the item the loop holds while it waits for one


@pytest.mark.parametrize("name", FAIL_FIRST_ERROR)
async def test_first_error_is_raised_as_is_and_cancels_the_rest(name: str) -> None:
    probe = Probe(fail_on=2)
    async with asyncio.timeout(5):  # a helper that hangs fails here instead of stalling the run
        with pytest.raises(ValueError, match="item 2 failed"):
            await FAIL_FIRST_ERROR[name](probe.job, list(range(10)))
    assert probe.gauge.current == 0
    assert len(probe.cancelled) == probe.gauge.total - 1 > 0
    assert not leftover_tasks()


async def test_task_group_reports_errors_as_an_exception_group() -> None:
    probe = Probe(fail_on=2)
    with pytest.raises(ExceptionGroup) as caught:
        await map_task_group(probe.job, list(range(10)))
    assert caught.group_contains(ValueError, match="item 2 failed")
    assert sorted(probe.cancelled) == [0, 1, 3, 4, 5, 6, 7, 8, 9]
    assert not leftover_tasks()


async def test_simultaneous_failures_raise_the_first_and_mention_the_others() -> None:
    async def fail(item: int) -> None:
        await asyncio.sleep(0.01)
        raise ValueError(f"item {item}")

    with pytest.raises(ValueError, match="item 0") as caught:
        await map_bounded(fail, [0, 1], limit=2)
    assert caught.value.__notes__ == ["another task also failed: ValueError('item 1')"]


@pytest.mark.parametrize("name", EVERY)
async def test_cancelling_the_caller_cancels_every_child(name: str) -> None:
    probe = Probe()
    caller = asyncio.create_task(EVERY[name](probe.job, list(range(10))))
    await probe.started.wait()
    assert probe.gauge.current > 0
    caller.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await caller
    assert probe.gauge.current == 0
    assert len(probe.cancelled) == probe.gauge.total
    assert not leftover_tasks()


async def test_timeout_around_a_helper_becomes_timeout_error() -> None:
    probe = Probe()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await map_bounded(probe.job, list(range(10)), limit=5)
    assert len(probe.cancelled) == 5
    assert not leftover_tasks()


async def test_pipeline_queues_apply_backpressure_to_the_source() -> None:
    """Memory is bounded by queue sizes and workers, not by the number of items."""
    pulled = finished = 0
    worst_lag = 0

    def videos() -> Iterator[int]:
        nonlocal pulled
        for video_id in range(200):
            pulled += 1
            yield video_id

    async def fast(item: int) -> int:
        return item

    async def slow(item: int) -> None:
        nonlocal finished, worst_lag
        worst_lag = max(worst_lag, pulled - finished)
        await asyncio.sleep(0.0005)
        finished += 1

    stages = [Stage("fast", fast, workers=2, queue_size=2),
              Stage("slow", slow, workers=2, queue_size=2)]
    assert await run_pipeline(videos(), stages, keep_results=False) == []
    assert finished == 200
    # 2 + 2 queued, 2 + 2 held by workers, 1 in the feeder's hand.
    assert worst_lag <= 9


async def test_pipeline_runs_the_video_workflow_with_a_fan_out_stage() -> None:
    def quick(func: Callable[..., Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        return functools.partial(func, base_s=0.002)

    async def video_ids() -> AsyncIterator[int]:
        for video_id in range(12):
            yield video_id

    recorder = Recorder()
    clips = await run_pipeline(video_ids(), [
        Stage("download", quick(simulated.download), workers=2),
        Stage("transcribe", quick(simulated.transcribe), workers=3),
        Stage("highlights", quick(simulated.find_highlights), fan_out=True),
        Stage("render", quick(simulated.render), workers=2),
    ], recorder=recorder)

    assert sorted((c.video_id, c.index) for c in clips) == [
        (v, i) for v in range(12) for i in range(1 + v % 3)]
    tasks = recorder.frame("task")
    assert tasks.groupby("stage").size().to_dict() == {
        "download": 12, "transcribe": 12, "highlights": 12, "render": len(clips)}
    assert set(tasks.loc[tasks.stage == "transcribe", "worker"]) <= {
        "transcribe-0", "transcribe-1", "transcribe-2"}


async def test_recorder_gets_one_task_event_per_call_with_its_slot() -> None:
    recorder = Recorder()
    with pytest.raises(simulated.VideoNotFoundError):
        await map_bounded(functools.partial(simulated.fetch_metadata, base_s=0.001),
                          [11, 12, 404], limit=2, recorder=recorder)
    tasks = recorder.frame("task")
    assert set(tasks["name"]) == {"fetch_metadata"}
    assert set(tasks["worker"]) <= {0, 1}
    failed = tasks[~tasks.ok]
    assert failed[["item", "error"]].values.tolist() == [["404", "VideoNotFoundError"]]


async def test_fan_out_returns_each_branch_by_name() -> None:
    result = await fan_out(7, {"transcript": simulated.transcribe,
                               "scenes": functools.partial(simulated.detect_scenes, base_s=0.001),
                               "thumbnail": simulated.make_thumbnail})
    assert result == {"transcript": simulated.Transcript(7, words=2 * 79),
                      "scenes": [0.0, 45.0], "thumbnail": "thumbnails/7.jpg"}


async def test_task_scope_raises_an_error_of_its_own_body_too() -> None:
    child_started = asyncio.Event()

    async def child() -> None:
        child_started.set()
        await asyncio.sleep(10)

    with pytest.raises(KeyError):
        async with task_scope() as group:
            group.create_task(child())
            await child_started.wait()
            raise KeyError("body")
    assert not leftover_tasks()


@pytest.mark.parametrize("make", [
    lambda: Stage("s", passthrough, workers=0),
    lambda: Stage("s", passthrough, queue_size=0),
    lambda: map_bounded(passthrough, [], limit=0).send(None),
    lambda: run_pipeline([], []).send(None),
])
def test_nonsense_settings_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


async def test_empty_input_gives_empty_output() -> None:
    assert await map_bounded(passthrough, [], limit=2) == []
    assert await map_gather(passthrough, []) == []
    assert await run_pipeline([], [Stage("s", passthrough, workers=3)]) == []
