"""Charts of streamed calls: when the first token came against when the last one did, and the
rate each stream kept.

Both take DataFrames the code produced: ``recorder.frame("http")`` (streamed events carry
``ttft_s`` or ``ttfb_s`` and ``seconds``), or ``opusclip bench stream``'s per-stream rows.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes

from opusclip_lib.charts._axes import chart_axes

_SIZE = (8, 3.5)


def ttft_vs_total(events: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """One bar per call: the wait for the first token (dark) inside the whole call (light).

    ``events``: ``seconds`` and ``ttft_s`` (or ``ttfb_s``) per call, in call order.
    """
    ax = chart_axes(ax, _SIZE)
    first = events["ttft_s"] if "ttft_s" in events else events["ttfb_s"]
    calls = range(1, len(events) + 1)
    ax.bar(calls, events["seconds"], color="tab:blue", alpha=0.35, label="whole answer")
    ax.bar(calls, first, color="tab:blue", label="first token")
    ax.set_xlabel("call")
    ax.set_ylabel("seconds")
    ax.set_title("What a user waits for: the first token, not the whole answer")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return ax


def stream_rates(streams: pd.DataFrame, *, configured: float, ax: Axes | None = None) -> Axes:
    """Histogram of tokens per second per stream, against the rate the server was set to.

    ``streams``: a ``tokens_per_s`` column, one row per stream.
    """
    ax = chart_axes(ax, _SIZE)
    ax.hist(streams["tokens_per_s"], bins=30, color="tab:green", alpha=0.8,
            label=f"{len(streams)} streams")
    ax.axvline(configured, color="grey", linestyle="--", label=f"server rate {configured:g}/s")
    ax.axvline(0.9 * configured, color="tab:red", linestyle=":", label="target: 0.9 x rate")
    ax.set_xlabel("tokens / s received, per stream")
    ax.set_ylabel("streams")
    ax.legend(fontsize="small")
    return ax
