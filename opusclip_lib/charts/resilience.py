"""Charts of the resilience layer at work, drawn from a Recorder's events.

Each function takes ``recorder.frame(kind)`` for the kind it names, so what a chart shows is what
the policy really did: requests sent per window against the limit, cache hit rate, attempts with
their backoff, and the breaker's state.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from opusclip_lib.charts._axes import chart_axes, outcome_colour
from opusclip_lib.charts.timeline import timeline

_BREAKER_LEVELS = {"closed": 0, "half-open": 1, "open": 2}

_SIZE = (9, 3.5)  # inches: the size of a chart drawn on its own


def requests_per_window(attempts: pd.DataFrame, *, limit: float, window_s: float,
                        provider: str | None = None, ax: Axes | None = None) -> Axes:
    """Requests sent in the trailing ``window_s`` at each send, against ``limit``.

    ``attempts`` is ``recorder.frame("attempt")``; attempts refused locally (open circuit, no
    quota) never reached the server and are left out.
    """
    ax = chart_axes(ax, _SIZE)
    sent = attempts[attempts["sent"].astype(bool)]
    if provider is not None:
        sent = sent[sent["name"] == provider]
    times = np.sort(sent["start"].to_numpy(dtype=float))
    in_window = np.arange(1, len(times) + 1) - np.searchsorted(times, times - window_s,
                                                               side="right")
    ax.step(times, in_window, where="post", label=f"requests in last {window_s:g} s")
    ax.axhline(limit, color="tab:red", linestyle="--", label=f"limit ({limit:g})")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("requests")
    ax.set_ylim(0, max(limit, in_window.max(initial=0)) * 1.15)
    ax.set_title(f"Rate limit: {provider or 'all providers'}")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def cache_hit_rate(lookups: pd.DataFrame, *, over: int = 50, ax: Axes | None = None) -> Axes:
    """Rolling hit rate over the last ``over`` look-ups, one line per provider.

    ``lookups`` is ``recorder.frame("cache")``.
    """
    ax = chart_axes(ax, _SIZE)
    for name, group in lookups.sort_values("start").groupby("name", sort=False):
        rate = group["hit"].astype(float).rolling(over, min_periods=1).mean() * 100
        ax.plot(group["start"], rate, label=str(name))
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(f"hit rate, last {over} look-ups (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Cache hit rate")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def attempt_timeline(attempts: pd.DataFrame, *, max_calls: int = 30,
                     ax: Axes | None = None) -> Axes:
    """One lane per call: a bar per attempt coloured by outcome (hatched if it failed), a dotted
    line for each backoff sleep, a thin solid line for time queued for a slot or the limiter.

    ``attempts`` is ``recorder.frame("attempt")``; filter it first to pick the calls to show.
    """
    frame = attempts.assign(lane=attempts["name"] + " #" + attempts["call"].astype(str))
    frame = frame[frame["lane"].isin(frame["lane"].drop_duplicates().head(max_calls))]
    frame = frame.sort_values(["call", "attempt"])
    ax = timeline(frame, lane="lane", color_by="outcome", color_of=outcome_colour,
                  title="Attempts and backoff", ax=ax)
    rows = frame["lane"].map({lane: i for i, lane in enumerate(dict.fromkeys(frame["lane"]))})
    queued_from = frame["start"] - frame["queued"]
    retried = frame["attempt"] > 1
    ax.hlines(rows[retried], queued_from[retried] - frame["wait"][retried], queued_from[retried],
              colors="grey", linestyles=":")
    ax.hlines(rows, queued_from, frame["start"], colors="tab:gray", linewidth=0.8, alpha=0.6)
    return ax


def breaker_states(transitions: pd.DataFrame, *, until: float | None = None,
                   ax: Axes | None = None) -> Axes:
    """Each provider's breaker state over time, as steps (closed until the first change).

    ``transitions`` is ``recorder.frame("breaker")``; ``until`` extends the last state to that time.
    """
    ax = chart_axes(ax, _SIZE)
    if until is None:
        until = float(transitions["start"].max()) if len(transitions) else 0.0
    for name, group in transitions.sort_values("start").groupby("name", sort=False):
        times = [0.0, *group["start"], until]
        levels = [0, *group["state"].map(_BREAKER_LEVELS)]
        ax.step(times, [*levels, levels[-1]], where="post", label=str(name))
    ax.set_yticks(list(_BREAKER_LEVELS.values()), list(_BREAKER_LEVELS))
    ax.set_ylim(-0.3, 2.3)
    ax.set_xlabel("seconds since start")
    ax.set_title("Circuit breaker state")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    return ax
