"""Fallback results that announce themselves, so nobody mistakes them for the real thing.

A fallback hides an outage from the user but must not hide it from the code: callers test
``isinstance(result, Fallback)`` and notebooks count them (``kind="fallback"`` events).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fallback(Generic[T]):
    """``value`` stands in for a live result; ``source`` says where it came from, ``reason`` why."""

    value: T
    reason: str
    source: str


def describe(error: BaseException) -> str:
    """``"RateLimitError: 429 ..."``: short enough for a label, specific enough to act on."""
    return f"{type(error).__name__}: {error}"


def template_captions(title: str, error: BaseException | None = None, *,
                      count: int = 3) -> Fallback[list[str]]:
    """Plain captions built from the clip title, for when the caption model is unavailable.

    Deliberately bland and marked ``source="template"``: a placeholder to review, never a
    substitute that quietly ships.
    """
    templates = ["{title}", "Watch: {title}", "{title} (full clip)", "Highlights: {title}",
                 "Don't miss {title}"]
    captions = [templates[i % len(templates)].format(title=title.strip()) for i in range(count)]
    return Fallback(captions, describe(error) if error else "caption service unavailable",
                    source="template")
