"""A Gantt-style timeline: one bar per event, one lane per task, so overlap is visible."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes

from opusclip_lib.charts._axes import chart_axes


def timeline(frame: pd.DataFrame, *, lane: str = "name", color_by: str | None = None,
             color_of: Callable[[Any], Any] | None = None, title: str = "",
             ax: Axes | None = None) -> Axes:
    """Draw events (columns ``start``, ``seconds`` and ``lane``) as horizontal bars.

    Failed events (``ok`` False) are hatched, so an error stands out in a crowd of successes.
    ``color_of(group)`` fixes a group's colour (so "ok" can always be green); by default the
    groups take the tab10 colours in order of appearance.
    """
    ax = chart_axes(ax, (9, 0.35 * max(frame[lane].nunique(), 4) + 1))
    lanes = list(dict.fromkeys(frame[lane]))
    groups = list(dict.fromkeys(frame[color_by])) if color_by else [None]
    colors = {g: color_of(g) if color_of else plt.cm.tab10(i % 10) for i, g in enumerate(groups)}
    for _, row in frame.iterrows():
        group = row[color_by] if color_by else None
        failed = "ok" in row and not bool(row["ok"])
        ax.barh(lanes.index(row[lane]), row["seconds"], left=row["start"], height=0.6,
                color=colors[group], edgecolor="black", linewidth=0.4,
                hatch="//" if failed else None)
    ax.set_yticks(range(len(lanes)), [str(x) for x in lanes])
    ax.invert_yaxis()
    ax.set_xlabel("seconds since start")
    if color_by:
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors[g]) for g in groups]
        ax.legend(handles, [str(g) for g in groups], loc="upper left", bbox_to_anchor=(1.01, 1),
                  fontsize="small", frameon=False)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return ax
