"""Axes every chart shares: where it draws, and the finish of the ones against concurrency."""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


def outcome_colour(outcome: object) -> str:
    """One colour per call outcome in every chart: ok green, refused by the breaker grey, any
    error red."""
    return {"ok": "tab:green", "CircuitOpenError": "tab:grey"}.get(str(outcome), "tab:red")


def chart_axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    """``ax`` when the caller places the chart (a cell of its own grid), else the axes of a new
    figure ``size`` inches wide and high."""
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def concurrency_axes(ax: Axes, levels: Iterable[int], *, base: int = 10) -> Axes:
    """Log-log axes ticked at the measured concurrency levels, with a legend and a grid.

    Both scales are logarithmic so "twice the concurrency, twice the throughput" is a straight
    line, and a curve bending away from the ideal is easy to see.
    """
    ticks = list(levels)
    ax.set_xscale("log", base=base)
    ax.set_yscale("log")
    ax.set_xticks(ticks, [str(level) for level in ticks])
    ax.legend(fontsize="small")
    ax.grid(which="both", alpha=0.3)
    return ax
