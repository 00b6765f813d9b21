"""A Redis failover as the caches saw it: hit rate and latency over time, the gap shaded."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from opusclip_lib.charts._axes import chart_axes

_SIZE = (9, 3.5)


def failover_timeline(operations: pd.DataFrame, *, killed_at_s: float, gap_s: float,
                      bin_s: float = 0.25, ax: Axes | None = None) -> Axes:
    """Hit rate (left axis) and p95 latency (right axis) per ``bin_s`` of cache reads.

    ``operations`` has ``t_s``, ``hit`` and ``latency_ms`` per read (the failover drill's frame).
    """
    ax = chart_axes(ax, _SIZE)
    bins = (operations["t_s"] // bin_s) * bin_s
    grouped = operations.groupby(bins)
    ax.plot(grouped["hit"].mean().index, grouped["hit"].mean() * 100, color="tab:blue",
            label="hit rate")
    ax.set_ylim(0, 105)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(f"hit rate per {bin_s:g} s (%)")
    ax.axvspan(killed_at_s, killed_at_s + gap_s, color="tab:red", alpha=0.12,
               label=f"gap ({gap_s:.1f} s)")
    ax.axvline(killed_at_s, color="tab:red", linestyle="--", label="primary killed")
    latency = ax.twinx()
    p95 = grouped["latency_ms"].quantile(0.95)
    latency.plot(p95.index, p95, color="tab:orange", label="p95 latency")
    latency.set_ylabel("p95 latency (ms)")
    latency.set_ylim(0, max(1.0, float(p95.max()) * 1.15))
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = latency.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, loc="lower right", fontsize="small")
    ax.set_title("Cache through a primary failover")
    ax.grid(alpha=0.3)
    return ax
