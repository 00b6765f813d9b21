"""Optional timing of each task, so a notebook can draw who ran when."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opusclip_lib.metrics import Recorder

T = TypeVar("T")
R = TypeVar("R")

TASK_KIND = "task"
_LABEL_WIDTH = 40


def describe(item: object) -> str:
    """A short label for a chart lane: ``str(item)``, cut to a width that fits an axis."""
    text = str(item)
    return text if len(text) <= _LABEL_WIDTH else text[: _LABEL_WIDTH - 1] + "…"


def name_of(func: Callable[..., Any]) -> str:
    """The function's name, seen through ``functools.partial``; a callable object's type name."""
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__name__", None) or type(func).__name__


async def call_recorded(func: Callable[[T], Awaitable[R]], item: T, recorder: Recorder | None,
                        *, name: str | None = None, **labels: Any) -> R:
    """``await func(item)``, recorded as a ``kind="task"`` event when a recorder is given.

    The event's ``name`` is the function (or stage) name; labels carry ``item`` plus whatever
    the caller adds (``worker``, ``stage``), which become lanes and colours on a timeline.
    """
    if recorder is None:
        return await func(item)
    with recorder.measure(TASK_KIND, name or name_of(func), item=describe(item), **labels):
        return await func(item)
