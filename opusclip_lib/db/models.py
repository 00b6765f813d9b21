"""Typed rows. Each backend returns timestamps and JSON a little differently (aware or naive
datetimes, ISO text; dicts or JSON text); ``from_row`` turns all of them into the same values:
UTC-aware ``datetime`` and decoded JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Self, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_json(value: Any) -> Any:
    if isinstance(value, (str, bytes, bytearray)):
        return json.loads(value)
    return value


def as_float(value: Any) -> float | None:
    """SQLite's RETURNING hands back whole REAL values as ints."""
    return None if value is None else float(value)


_DATETIME = "datetime | None"
_JSON = "Any"
_FLOAT = "float"
_OPTIONAL_FLOAT = "float | None"


@cache
def _decoders(cls: type) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    kinds = {_DATETIME: as_datetime, _JSON: as_json, _FLOAT: as_float, _OPTIONAL_FLOAT: as_float}
    return tuple((f.name, kinds.get(str(f.type))) for f in fields(cls))


class _Row:
    """``from_row`` for dataclasses: decode the fields annotated as datetimes or JSON."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        get = row.get
        return cls(*[get(name) if decode is None else decode(get(name))  # in field order
                     for name, decode in _decoders(cast(type, cls))])

    def to_dict(self) -> dict[str, Any]:
        return asdict(cast("DataclassInstance", self))


@dataclass(frozen=True, slots=True)
class Video(_Row):
    id: int
    youtube_id: str
    url: str
    title: str | None
    channel: str | None
    duration_s: float | None
    metadata: Any
    status: str
    created_at: datetime | None
    updated_at: datetime | None
    source: str | None = None
    """What the user gave, a path or a URL; ``None`` for a YouTube id."""
    content_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Clip(_Row):
    id: int
    video_id: int
    ranking: int
    start_s: float
    end_s: float
    title: str | None
    hook: str | None
    virality_score: float | None
    transcript: str | None
    clip_path: str | None
    thumbnail_path: str | None
    voiceover_path: str | None
    status: str
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Job(_Row):
    id: int
    kind: str
    video_id: int | None
    payload: Any
    status: str
    stage: str | None
    progress: float
    attempts: int
    max_attempts: int
    run_after: datetime | None
    locked_by: str | None
    heartbeat_at: datetime | None
    idempotency_key: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class JobEvent(_Row):
    id: int
    job_id: int
    from_status: str | None
    to_status: str
    worker: str | None
    message: str | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiCall(_Row):
    id: int
    provider: str
    endpoint: str
    request_hash: str
    status: int
    latency_s: float
    cost_usd: float
    response: Any
    created_at: datetime | None
