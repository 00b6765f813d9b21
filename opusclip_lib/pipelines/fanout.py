"""Fan-out/fan-in for one item: several different jobs on the same input, results gathered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from opusclip_lib.metrics import Recorder
from opusclip_lib.pipelines.recording import call_recorded
from opusclip_lib.pipelines.scope import task_scope

T = TypeVar("T")


async def fan_out(item: T, branches: Mapping[str, Callable[[T], Awaitable[Any]]], *,
                  recorder: Recorder | None = None) -> dict[str, Any]:
    """Run every branch on ``item`` at once and return ``{branch name: result}``.

    One video needs a transcript, scene cuts and a thumbnail; none depends on another, so the
    wait is the slowest branch, not the sum. The first failure cancels the other branches.
    """
    async with task_scope() as group:
        tasks = {name: group.create_task(call_recorded(func, item, recorder, name=name,
                                                       worker=name))
                 for name, func in branches.items()}
    return {name: task.result() for name, task in tasks.items()}
