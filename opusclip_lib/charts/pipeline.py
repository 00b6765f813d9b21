"""Charts of the workflow: who ran which stage when, and how throughput meets its bound.

Each function takes the DataFrame the code produced (``recorder.frame("stage")``,
:func:`opusclip_lib.workflow.status_timeline`, or ``opusclip bench pipeline``'s JSON runs) and
returns the matplotlib ``Axes`` it drew on.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from opusclip_lib.charts._axes import chart_axes, concurrency_axes
from opusclip_lib.charts.timeline import timeline


def stage_gantt(events: pd.DataFrame, *, lane: str = "video", title: str = "Stages per video",
                ax: Axes | None = None) -> Axes:
    """One lane per video, one bar per stage (or status) coloured by its name; failures hatched.

    ``events``: ``recorder.frame("stage")`` (stages, one process) or ``status_timeline(db)``
    (statuses, across processes and restarts).
    """
    return timeline(events, lane=lane, color_by="name", title=title, ax=ax)


def throughput_vs_concurrency(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Measured videos/min against the critical-path bound ``C / L``, per rendering setting.

    ``runs``: columns ``mode``, ``render``, ``concurrency``, ``videos_per_min``,
    ``bound_per_min`` (the benchmark's runs); only the optimised mode is drawn.
    """
    ax = chart_axes(ax, (9, 4))
    optimised = runs[runs["mode"] == "optimised"]
    for render, group in optimised.groupby("render", sort=False):
        group = group.sort_values("concurrency")
        label = "rendering on" if render else "rendering off"
        line, = ax.plot(group["concurrency"], group["videos_per_min"], marker="o",
                        label=f"measured, {label}")
        for _, row in group.iterrows():
            ax.annotate(f"{row['videos_per_min'] / row['bound_per_min']:.2f}",
                        (row["concurrency"], row["videos_per_min"]), textcoords="offset points",
                        xytext=(4, -12), fontsize="x-small", color=line.get_color())
    bound = optimised.drop_duplicates("concurrency").sort_values("concurrency")
    ax.plot(bound["concurrency"], bound["bound_per_min"], linestyle="--", color="grey",
            label="critical-path bound C / L")
    ax.margins(x=0.08)
    ax.set_xlabel("videos in flight (C)")
    ax.set_ylabel("videos / min (log)")
    ax.set_title("Throughput vs concurrency (numbers: ratio to the bound)")
    return concurrency_axes(ax, bound["concurrency"], base=2)


def naive_vs_optimised(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Videos/min of the naive pipeline and of each optimised concurrency, as bars."""
    ax = chart_axes(ax, (9, 0.45 * len(runs) + 1.5))
    labels = [f"{row['mode']}, C={row['concurrency']}" + (", render" if row["render"] else "")
              for _, row in runs.iterrows()]
    colors = ["tab:red" if mode == "naive" else "tab:blue" for mode in runs["mode"]]
    ax.barh(labels[::-1], runs["videos_per_min"].to_numpy()[::-1], color=colors[::-1])
    ax.set_xlabel("videos / min")
    ax.set_title("Naive (sequential, uncached, per-row) vs optimised")
    ax.grid(axis="x", alpha=0.3)
    return ax
