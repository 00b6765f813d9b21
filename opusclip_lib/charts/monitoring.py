"""Charts of live monitoring and data sync: jobs by status over time, feed latency per
transport, and the YouTube quota each sync spent (and what its 304 answers were)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from opusclip_lib.charts._axes import chart_axes
from opusclip_lib.db import JOB_STATUSES

# One colour per status, fixed, so a redrawn chart never swaps them.
STATUS_COLOURS = dict(zip(JOB_STATUSES, ("tab:grey", "tab:blue", "tab:cyan", "tab:purple",
                                         "tab:orange", "tab:green", "tab:red", "black"),
                          strict=True))

_SIZE = (9, 3.5)  # inches: the size of a chart drawn on its own


def status_over_time(history: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Jobs per status after each update (``LiveStatus.history()``: ``seconds`` + a column per
    status)."""
    ax = chart_axes(ax, _SIZE)
    statuses = [s for s in (*JOB_STATUSES, *history.columns) if s in history and s != "seconds"]
    for status in dict.fromkeys(statuses):
        ax.step(history["seconds"], history[status], where="post", label=status,
                color=STATUS_COLOURS.get(status))
    ax.set_xlabel("seconds since watching began")
    ax.set_ylabel("jobs")
    ax.set_title("Jobs by status")
    if statuses:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return ax


def feed_latency(events: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Share of updates delivered within x ms, per transport (``recorder.frame("feed")``)."""
    ax = chart_axes(ax, _SIZE)
    delivered = events[events["ok"].astype(bool)]
    for transport, group in delivered.groupby("name", sort=False):
        ms = np.sort(group["seconds"].to_numpy(dtype=float) * 1000)
        share = np.arange(1, len(ms) + 1) / len(ms)
        p50, p95 = np.percentile(ms, [50, 95])
        ax.step(ms, share, where="post",
                label=f"{transport}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (n={len(ms)})")
    ax.axhline(0.95, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("state change -> subscriber (ms, log scale)")
    ax.set_ylabel("share of updates")
    ax.set_title("Feed delivery latency")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return ax


def sync_quota(reports: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Quota units per sync (``sync.frame(reports)``): answered with data, and answered 304
    (``saved_units``: what ETags save if Google does not bill a 304; counted at full price)."""
    ax = chart_axes(ax, _SIZE)
    labels = [str(label) for label in reports["label"]]
    with_data = reports["quota_units"] - reports["saved_units"]
    ax.bar(labels, with_data, label="answered with data (200)", color="tab:blue")
    ax.bar(labels, reports["saved_units"], bottom=with_data, color="tab:green", hatch="//",
           label="answered 304 Not Modified (saved if 304s are free)")
    for x, (_, row) in enumerate(reports.iterrows()):
        ax.annotate(f"{row['written']} rows written\n{row['unchanged']} unchanged",
                    (x, row["quota_units"]), ha="center", va="bottom", fontsize="small")
    ax.set_ylim(0, max(reports["quota_units"].max(), 1) * 1.3)
    ax.set_ylabel("quota units")
    ax.set_title("YouTube quota per sync")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2)
    ax.grid(axis="y", alpha=0.3)
    return ax
