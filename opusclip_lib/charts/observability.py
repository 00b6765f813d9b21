"""Charts of one job's trace: a waterfall of its spans, children under their parents."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from opusclip_lib.charts._axes import chart_axes

KIND_COLORS = {"job": "#4c72b0", "stage": "#55a868", "http": "#dd8452", "db": "#8172b3",
               "ffmpeg": "#c44e52", "other": "#937860"}


def span_kind(row: pd.Series) -> str:
    """``job``, ``stage``, ``http``, ``db``, ``ffmpeg`` or ``other``, from a span's attributes."""
    if pd.notna(row.get("opusclip.job.id")):
        return "job"
    if isinstance(row.get("opusclip.stage"), str):
        return "stage"
    if isinstance(row.get("http.request.method"), str):
        return "http"
    if isinstance(row.get("db.system.name"), str):
        return "db"
    if row["name"] == "ffmpeg":
        return "ffmpeg"
    return "other"


def tree_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Spans depth first (each parent, then its children by start), with a ``depth`` column."""
    children: dict[object, list[int]] = {}
    known = set(frame["span_id"])
    for index, row in frame.sort_values("start_s").iterrows():
        parent = row["parent_id"] if row["parent_id"] in known else None
        children.setdefault(parent, []).append(index)
    order: list[tuple[int, int]] = []

    def visit(parent: object, depth: int) -> None:
        for index in children.get(parent, []):
            order.append((index, depth))
            visit(frame.at[index, "span_id"], depth + 1)

    visit(None, 0)
    ordered = frame.loc[[index for index, _ in order]].copy()
    ordered["depth"] = [depth for _, depth in order]
    return ordered


def waterfall(frame: pd.DataFrame, *, title: str = "", ax: Axes | None = None,
              max_spans: int = 60) -> Axes:
    """One bar per span (``start_s``, ``seconds`` from :func:`~opusclip_lib.observability
    .span_rows`), children indented under their parent; failed spans hatched."""
    ordered = tree_order(frame).head(max_spans)
    ax = chart_axes(ax, (10, 0.22 * len(ordered) + 1.2))
    origin = ordered["start_s"].min()
    for lane, (_, row) in enumerate(ordered.iterrows()):
        kind = span_kind(row)
        failed = row.get("status") == "ERROR"
        ax.barh(lane, max(row["seconds"], 1e-4), left=row["start_s"] - origin, height=0.7,
                color=KIND_COLORS[kind], hatch="///" if failed else None,
                edgecolor="black" if failed else KIND_COLORS[kind])
    ax.set_yticks(range(len(ordered)))
    ax.set_yticklabels(["  " * depth + str(name) for depth, name in
                        zip(ordered["depth"], ordered["name"], strict=True)], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the job's first span")
    ax.set_title(title)
    used = dict.fromkeys(span_kind(row) for _, row in ordered.iterrows())
    ax.legend(handles=[Patch(color=KIND_COLORS[k], label=k) for k in used],
              loc="center right", fontsize=8)
    return ax
