"""Charts of ``opusclip bench scale``: throughput against worker processes, claims per second,
and what a broker costs per job.

Each function takes a DataFrame of the benchmark's rows (``ProcessRun.row()``,
``ClaimRun.row()``, ``asdict(DispatchResult)``, or the JSON it saved) and returns the ``Axes``.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from opusclip_lib.charts._axes import chart_axes


def scaling(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Videos/min against worker processes: rendering off with its bound ``N C / L``, and
    rendering on (pinned: one core per process)."""
    ax = chart_axes(ax, (7, 4))
    flat = runs[~runs["render"]].sort_values("processes")
    if not flat.empty:
        line, = ax.plot(flat["processes"], flat["videos_per_min"], marker="o",
                        label="measured, rendering off")
        for _, row in flat.iterrows():
            ax.annotate(f"{row['ratio']:.2f}", (row["processes"], row["videos_per_min"]),
                        textcoords="offset points", xytext=(4, -12), fontsize="x-small",
                        color=line.get_color())
        ax.plot(flat["processes"], flat["bound_per_min"], linestyle="--", color="grey",
                label="critical-path bound N C / L")
    for pinned, group in runs[runs["render"]].groupby("pinned", sort=False):
        group = group.sort_values("processes")
        ax.plot(group["processes"], group["videos_per_min"], marker="s",
                linestyle="-" if pinned else "none",
                label=f"measured, rendering on{', one core each' if pinned else ', unpinned'}")
    ticks = sorted(runs["processes"].unique())
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("worker processes (N)")
    ax.set_ylabel("videos / min (log)")
    ax.set_title("Throughput vs worker processes (numbers: ratio to the bound)")
    ax.legend(fontsize="small")
    ax.grid(which="both", alpha=0.3)
    return ax


def claims_per_second(runs: pd.DataFrame, *, target: float | None = None,
                      ax: Axes | None = None) -> Axes:
    """Jobs claimed and completed per second, a bar per claiming mode and process count."""
    ax = chart_axes(ax, (7, 4))
    table = runs.pivot_table(index="mode", columns="workers", values="jobs_per_s",
                             sort=False)
    table.index = [mode.replace(", ", "\n") for mode in table.index]
    table.plot.bar(ax=ax, rot=0)
    if target is not None:
        ax.axhline(target, linestyle="--", color="grey", label=f"target {target:,.0f}/s")
    ax.set_yscale("log")
    ax.set_xlabel("")
    ax.set_ylabel("jobs / s (log)")
    ax.set_title("Empty jobs claimed and completed")
    ax.legend(title="processes", fontsize="small")
    ax.grid(axis="y", which="both", alpha=0.3)
    return ax


def dispatch_overhead(results: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Per broker: enqueue-to-claim latency (median, p95) of one job at a time."""
    ax = chart_axes(ax, (7, 4))
    frame = results.set_index("broker")[["latency_median_ms", "latency_p95_ms"]]
    frame.columns = ["median", "p95"]
    frame.plot.barh(ax=ax)
    ax.set_xlabel("enqueue to claim, ms")
    ax.set_ylabel("")
    ax.set_title("Dispatch latency per broker")
    ax.grid(axis="x", which="both", alpha=0.3)
    return ax
