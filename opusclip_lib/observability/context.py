"""The fields every log line inside a job carries, kept in context variables.

A context variable is copied into every task created while it is set (``TaskGroup``,
``gather``, ``create_task``), so a clip rendered in a child task still logs its job. Another
process starts from the job row it claimed: :func:`job_fields` rebuilds the fields from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

#: The names, in the order a readable log line shows them.
FIELDS = ("job_id", "video_id", "stage", "attempt", "provider", "request_id")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("opusclip_log_fields", default=_EMPTY)
# Apart from the fields: every API call sets it, and one variable set costs less than a copy
# of the fields; a line (far rarer than a call) merges it in.
_provider: ContextVar[str | None] = ContextVar("opusclip_log_provider", default=None)


def current() -> Mapping[str, Any]:
    """The fields bound in this task (read-only), the provider of the API call under way too."""
    fields = _fields.get()
    provider = _provider.get()
    return fields if provider is None else MappingProxyType({**fields, "provider": provider})


def enter_call(provider: str) -> Token[str | None]:
    """``provider`` in the context until :func:`leave_call` with the token returned."""
    return _provider.set(provider)


def leave_call(token: Token[str | None]) -> None:
    _provider.reset(token)


def push(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add ``fields`` (``None`` values unset) until :func:`pop` with the token returned."""
    merged = dict(_fields.get())
    for name, value in fields.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return _fields.set(MappingProxyType(merged))


def pop(token: Token[Mapping[str, Any]]) -> None:
    _fields.reset(token)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` for the ``with`` block and every task it starts."""
    token = push(**fields)
    try:
        yield
    finally:
        pop(token)


def job_fields(job: Any) -> dict[str, Any]:
    """The context of a job row (any object with ``id``, ``video_id``, ``attempts``, ``stage``)."""
    return {"job_id": job.id, "video_id": job.video_id, "attempt": job.attempts,
            "stage": job.stage}
