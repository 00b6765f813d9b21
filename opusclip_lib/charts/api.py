"""Charts of API traffic: throughput against concurrency, and what monitoring watches per API.

Each function takes a DataFrame the code produced (``opusclip bench api``'s runs, a notebook's
timings, or ``recorder.frame("http")``, whose events the clients record for every exchange) and
returns what it drew on, so a notebook can adjust or combine charts.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from opusclip_lib.charts._axes import chart_axes, concurrency_axes, outcome_colour

PERCENTILES = {"p50": ("tab:green", 50), "p95": ("tab:orange", 95), "p99": ("tab:red", 99)}

_SIZE = (8, 3.5)  # inches: the size of a chart drawn on its own


def throughput_vs_concurrency(runs: pd.DataFrame, *, latency_s: float,
                              ax: Axes | None = None) -> Axes:
    """Requests per second of each stack against the ideal ``concurrency / latency_s``, log-log.

    ``runs``: columns ``stack``, ``concurrency`` and ``req_per_s`` (the benchmark's rows).
    """
    ax = chart_axes(ax, _SIZE)
    for stack, group in runs.groupby("stack", sort=False):
        group = group.sort_values("concurrency")
        ax.plot(group["concurrency"], group["req_per_s"], marker="o", label=str(stack))
    levels = np.sort(runs["concurrency"].unique())
    if latency_s > 0:  # with no latency_s there is no ideal line, only the CPU
        ax.plot(levels, levels / latency_s, linestyle="--", color="grey",
                label=f"ideal: concurrency / {latency_s * 1000:g} ms")
    ax.set_xlabel("requests in flight (concurrency)")
    ax.set_ylabel("requests / s (log)")
    ax.set_title(f"Throughput vs concurrency, {latency_s * 1000:g} ms server latency")
    return concurrency_axes(ax, levels)


def speedup_vs_concurrency(runs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Speed-up over one-at-a-time (``seconds`` at the lowest concurrency / ``seconds``) against
    the ``ideal`` column, per ``concurrency``; the points are labelled with the measured value."""
    ax = chart_axes(ax, _SIZE)
    runs = runs.sort_values("concurrency")
    speedup = runs["seconds"].iloc[0] / runs["seconds"]
    ax.plot(runs["concurrency"], runs["ideal"], linestyle="--", color="grey", marker=".",
            label="ideal (waves of `concurrency` calls)")
    ax.plot(runs["concurrency"], speedup, marker="o", label="measured")
    for concurrency, value in zip(runs["concurrency"], speedup, strict=True):
        ax.annotate(f"{value:.1f}x", (concurrency, value), textcoords="offset points",
                    xytext=(5, -12), fontsize="x-small")
    ax.set_xlabel("calls in flight (concurrency)")
    ax.set_ylabel("speed-up (log)")
    ax.set_title("Speed-up over one call at a time")
    return concurrency_axes(ax, runs["concurrency"])


def call_outcomes(attempts: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Each attempt as a dot at the time it was sent (or refused), one row per outcome.

    ``attempts`` is ``recorder.frame("attempt")``: ``outcome`` is ``ok``, a status code or the
    error's name (``CircuitOpenError`` for a call the breaker refused without sending it).
    """
    ax = chart_axes(ax, (8, 2.5))
    outcomes = list(dict.fromkeys(["ok", *sorted(set(attempts["outcome"]) - {"ok"})]))
    for row, outcome in enumerate(outcomes):
        times = attempts.loc[attempts["outcome"] == outcome, "start"]
        ax.scatter(times, np.full(len(times), row), s=18,
                   color=outcome_colour(outcome), label=f"{outcome} ({len(times)})")
    ax.set_yticks(range(len(outcomes)), outcomes)
    ax.set_ylim(-0.6, len(outcomes) - 0.4)
    ax.set_xlabel("seconds since start")
    ax.set_title("Calls by outcome")
    ax.grid(alpha=0.3)
    return ax


def latency_histograms(http: pd.DataFrame, *, by: str = "provider",
                       bins: int = 40) -> Figure:
    """One histogram of latency (ms, log bins) per ``by`` value, p50/p95/p99 marked.

    ``http`` is ``recorder.frame("http")``: every exchange counts, failed ones too (a slow 503
    is slow for the user as well).
    """
    groups = list(http.groupby(by, sort=True))
    figure, axes = plt.subplots(len(groups), 1, figsize=(8, 1.7 * len(groups) + 0.6),
                                sharex=True, squeeze=False)
    ms = http["seconds"].to_numpy(dtype=float) * 1000
    edges = np.geomspace(max(ms.min(), 0.01), ms.max() * 1.01, bins + 1)
    for ax, (name, group) in zip(axes[:, 0], groups, strict=True):
        values = group["seconds"].to_numpy(dtype=float) * 1000
        ax.hist(values, bins=edges, color="tab:blue", alpha=0.7)
        for label, (colour, q) in PERCENTILES.items():
            value = float(np.percentile(values, q))
            ax.axvline(value, color=colour, linewidth=1.2, label=f"{label} {value:,.0f} ms")
        ax.set_title(f"{name} (n={len(values)})", fontsize="small", loc="left")
        ax.set_ylabel("calls")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xscale("log")
    axes[-1, 0].set_xlabel("latency (ms, log scale)")
    figure.suptitle("Latency per API")
    figure.tight_layout()
    return figure


def _binned(http: pd.DataFrame, bin_s: float, by: str) -> pd.DataFrame:
    """Calls per ``by`` value and time bin (by when they finished), with their failures."""
    frame = http.assign(bin=(http["end"] // bin_s) * bin_s,
                        failed=~http["ok"].astype(bool))
    return frame.groupby([by, "bin"]).agg(calls=("ok", "size"), failed=("failed", "sum"))


def throughput_over_time(http: pd.DataFrame, *, bin_s: float = 0.5, by: str = "provider",
                         ax: Axes | None = None) -> Axes:
    """Completed calls per second per ``by`` value, in bins of ``bin_s``."""
    ax = chart_axes(ax, _SIZE)
    binned = _binned(http, bin_s, by)
    for name, group in binned.groupby(level=0, sort=True):
        times = group.index.get_level_values("bin")
        ax.step(times, group["calls"] / bin_s, where="post", label=str(name))
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("calls / s")
    ax.set_title(f"Throughput per API ({bin_s:g} s bins)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return ax


def error_rate_over_time(http: pd.DataFrame, *, bin_s: float = 1.0,
                         by: str = "provider", ax: Axes | None = None) -> Axes:
    """Share of calls that failed per ``by`` value, in bins of ``bin_s`` (percent)."""
    ax = chart_axes(ax, _SIZE)
    binned = _binned(http, bin_s, by)
    for name, group in binned.groupby(level=0, sort=True):
        times = group.index.get_level_values("bin")
        ax.step(times, 100 * group["failed"] / group["calls"], where="post", label=str(name))
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("failed calls (%)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Error rate per API ({bin_s:g} s bins)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return ax
