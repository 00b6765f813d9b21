"""Charts of what the database layer measured: query latency, load throughput, pool use, cache.

Each function takes the DataFrame the code produced (``recorder.frame(kind)`` or the benchmark's
results) and returns the matplotlib ``Axes`` it drew on, so a notebook can adjust or combine them.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from opusclip_lib.charts._axes import chart_axes
from opusclip_lib.metrics import percentiles

_SIZE = (9, 4)  # inches: the size of a chart drawn on its own


def latency_percentiles(queries: pd.DataFrame, *, top: int = 15, ax: Axes | None = None) -> Axes:
    """p50/p95/p99 latency (ms) of the ``top`` most frequent query names (``kind="query"``)."""
    table = percentiles(queries, "name").sort_values("count", ascending=False).head(top)
    ax = chart_axes(ax, (9, 0.35 * len(table) + 1.5))
    table[["p50_ms", "p95_ms", "p99_ms"]].iloc[::-1].plot.barh(ax=ax, width=0.8)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("")
    ax.set_title("Query latency percentiles")
    ax.grid(axis="x", alpha=0.3)
    return ax


def rows_per_second(results: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Insert throughput by method and backend, one dot per measurement on a log scale (columns
    backend, method, rows, seconds: the benchmark's JSON). Dots, not bars: a bar on a log axis
    starts at an arbitrary baseline, so its length means nothing."""
    frame = results.assign(rows_per_s=results["rows"] / results["seconds"])
    table = frame.pivot_table(index="method", columns="backend", values="rows_per_s",
                              sort=False)
    ax = chart_axes(ax, (9, 0.5 * len(table) + 1.5))
    for backend in table.columns:
        ax.plot(table[backend], range(len(table)), "o", markersize=8, label=str(backend))
    ax.set_xscale("log")
    ax.set_yticks(range(len(table)), list(table.index))
    ax.set_ylim(len(table) - 0.5, -0.5)       # first method on top
    ax.set_xlabel("rows/s (log scale)")
    ax.set_title("Insert throughput by method")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


def pool_utilisation(samples: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Connections in use, open and waited for over time (``kind="pool"`` samples)."""
    ax = chart_axes(ax, _SIZE)
    for backend, group in samples.groupby("backend", sort=False):
        ax.step(group["start"], group["in_use"], where="post", label=f"{backend} in use")
        ax.step(group["start"], group["size"], where="post", linestyle="--",
                label=f"{backend} open")
        if group["waiting"].any():
            ax.step(group["start"], group["waiting"], where="post", linestyle=":",
                    label=f"{backend} waiting")
        ax.axhline(group["max_size"].iloc[-1], color="grey", linewidth=0.8)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("connections")
    ax.set_title("Pool utilisation (grey: max size)")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def cache_hit_rate(lookups: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Cumulative hit rate against the look-up number, per store (``kind="cache"`` events).

    Per look-up, not per second: the hit rate depends on which keys were asked for, not on how
    fast they were asked."""
    ax = chart_axes(ax, _SIZE)
    for store, group in lookups.sort_values("start").groupby("store", sort=False):
        hits = group["hit"].astype(float).reset_index(drop=True)
        ax.plot(hits.index + 1, hits.expanding().mean(),
                label=f"{store} ({int(hits.sum())} hits / {len(group)} look-ups)")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("look-up number")
    ax.set_ylabel("cumulative hit rate")
    ax.set_title("Cache hit rate")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax
