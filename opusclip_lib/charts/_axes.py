"""Axis finishing shared by the charts that plot something against concurrency."""

from __future__ import annotations

from collections.abc import Iterable

from matplotlib.axes import Axes


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
