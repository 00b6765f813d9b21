"""Async database layer: one interface over SQLite, PostgreSQL and MariaDB/MySQL.

    from opusclip_lib.db import connect, videos, jobs

    async with connect("sqlite:///work/opusclip.db") as db:   # pool opened, schema migrated
        video = await videos.insert_video(db, "dQw4w9WgXcQ", title="...")
        async with db.transaction() as tx:                     # BEGIN ... COMMIT / ROLLBACK
            await videos.update_video(tx, video.id, status="queued")
            await jobs.enqueue(tx, "pipeline", video_id=video.id)

Repository modules (``videos``, ``clips``, ``jobs``, ``api_calls``, ``outbox``, ``workers``)
take either the database (one autocommitted statement per call) or a transaction's connection.
Every statement is timed into ``db.recorder`` (``kind="query"``); errors are the types in
:mod:`opusclip_lib.db.errors`.

Code outside this package imports from ``opusclip_lib.db`` itself (the names in ``__all__``) or
from the repository modules; the other modules are its inside.
"""

from opusclip_lib.db import (
    api_calls,
    cache,
    clips,
    failures,
    jobs,
    maintenance,
    outbox,
    validate,
    videos,
    workers,
)
from opusclip_lib.db.backend import Backend, Params, Row
from opusclip_lib.db.connection import Connection, Executor, stop_if_cancelled
from opusclip_lib.db.database import Database, PoolStats, backend_class, connect
from opusclip_lib.db.errors import (
    CheckViolationError,
    ConnectionLostError,
    ConnectionSharedError,
    DatabaseError,
    DeadlockError,
    ForeignKeyViolationError,
    IntegrityError,
    InvalidTransitionError,
    InvalidUrlError,
    InvalidYouTubeIdError,
    LeaseLostError,
    LockTimeoutError,
    NotFoundError,
    NotNullViolationError,
    OperationalError,
    PoolTimeoutError,
    QueryError,
    StatementTimeoutError,
    UniqueViolationError,
    ValidationError,
    ValueTooLongError,
)
from opusclip_lib.db.models import (
    ApiCall,
    Clip,
    Job,
    JobEvent,
    Video,
    as_datetime,
    as_float,
    as_json,
)
from opusclip_lib.db.rounds import every
from opusclip_lib.db.schema import (
    JOB_STATUSES,
    MIGRATIONS,
    TABLES,
    Migration,
    clear,
    migrate,
    reset,
    schema_version,
)
from opusclip_lib.db.timeouts import Timeouts
from opusclip_lib.db.urls import DatabaseURL, parse_url
from opusclip_lib.db.validate import YOUTUBE_ID
from opusclip_lib.errors import ConfigurationError

__all__ = [
    "JOB_STATUSES", "MIGRATIONS", "TABLES", "YOUTUBE_ID", "ApiCall", "Backend",
    "CheckViolationError", "Clip", "ConfigurationError", "Connection", "ConnectionLostError",
    "ConnectionSharedError", "Database", "DatabaseError", "DatabaseURL", "DeadlockError",
    "Executor", "ForeignKeyViolationError", "IntegrityError", "InvalidTransitionError",
    "InvalidUrlError", "InvalidYouTubeIdError", "Job", "JobEvent", "LeaseLostError",
    "LockTimeoutError", "Migration", "NotFoundError", "NotNullViolationError",
    "OperationalError", "Params", "PoolStats", "PoolTimeoutError", "QueryError", "Row",
    "StatementTimeoutError", "Timeouts", "UniqueViolationError", "ValidationError",
    "ValueTooLongError", "Video", "api_calls", "as_datetime", "as_float", "as_json",
    "backend_class", "cache", "clear", "clips", "connect", "every", "failures", "jobs",
    "maintenance", "migrate", "outbox", "parse_url", "reset", "schema_version",
    "stop_if_cancelled", "validate", "videos", "workers",
]
