"""One exception hierarchy for all three backends.

Callers catch :class:`UniqueViolationError` or :class:`ConnectionLostError`, never ``asyncpg``,
``asyncmy`` or ``sqlite3`` errors: each backend module maps its driver's native errors here,
and keeps the original as ``__cause__`` for debugging. A bad URL or option is the library-wide
:class:`~opusclip_lib.errors.ConfigurationError` (re-exported by the package); the transient
classes (``*``, :class:`OperationalError` and below) also inherit
:class:`~opusclip_lib.errors.TransientError`. The whole library's tree is drawn in
:mod:`opusclip_lib.errors`::

    DatabaseError
    ├── ValidationError
    │   ├── InvalidYouTubeIdError
    │   ├── InvalidUrlError
    │   └── ValueTooLongError
    ├── IntegrityError
    │   ├── UniqueViolationError
    │   ├── CheckViolationError
    │   ├── ForeignKeyViolationError
    │   └── NotNullViolationError
    ├── NotFoundError
    ├── InvalidTransitionError
    │   └── LeaseLostError
    ├── ConnectionSharedError
    ├── QueryError
    └── OperationalError *
        ├── ConnectionLostError *
        ├── StatementTimeoutError *
        ├── PoolTimeoutError *
        └── LockTimeoutError *
            └── DeadlockError *
"""

from __future__ import annotations

from opusclip_lib.errors import OpusClipError, TransientError


class DatabaseError(OpusClipError):
    """Root of every error raised by :mod:`opusclip_lib.db`."""

    def __init__(self, message: str, *, backend: str | None = None,
                 constraint: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.constraint = constraint


class ValidationError(DatabaseError, ValueError):
    """Input rejected before any SQL ran."""


class InvalidYouTubeIdError(ValidationError):
    """A YouTube id is exactly 11 characters of ``[A-Za-z0-9_-]``."""


class InvalidUrlError(ValidationError):
    """Only absolute http(s) URLs are stored."""


class ValueTooLongError(ValidationError):
    """A string is longer than its column allows (checked in Python and by the server)."""


class IntegrityError(DatabaseError):
    """The database refused a write because a constraint would be broken."""


class UniqueViolationError(IntegrityError):
    """A row with the same unique key already exists."""


class CheckViolationError(IntegrityError):
    """A CHECK constraint failed (e.g. a clip whose end is not after its start)."""


class ForeignKeyViolationError(IntegrityError):
    """The referenced row does not exist, or is still referenced."""


class NotNullViolationError(IntegrityError):
    """A required column was NULL."""


class NotFoundError(DatabaseError, LookupError):
    """No row with that key."""


class InvalidTransitionError(DatabaseError):
    """A job status change the state machine does not allow (or someone else got there first)."""


class LeaseLostError(InvalidTransitionError):
    """The worker no longer owns the job (reaped, cancelled or claimed by another worker)."""


class ConnectionSharedError(DatabaseError):
    """A task used a connection that another task acquired; each task must acquire its own."""


class QueryError(DatabaseError):
    """The SQL itself is wrong (syntax, unknown table or column)."""


class OperationalError(DatabaseError, TransientError):
    """The server or the connection failed; retrying may help."""


class ConnectionLostError(OperationalError):
    """The connection died mid-use; its transaction, if any, was rolled back by the server
    (raised by ``COMMIT`` itself, the outcome is unknown: see ``Connection.transaction``)."""

    @classmethod
    def of(cls, backend: str, detail: object) -> ConnectionLostError:
        return cls(f"lost the connection to {backend} ({detail}); the server rolled back any "
                   "open transaction, and the pool will open a new connection", backend=backend)


class StatementTimeoutError(OperationalError, TimeoutError):
    """The server did not answer within the statement (or COPY) deadline: a hung server or a
    partition. The connection was closed, so the server rolls back its open transaction."""


class PoolTimeoutError(OperationalError, TimeoutError):
    """No pooled connection became free within the acquire timeout."""


class LockTimeoutError(OperationalError):
    """Waiting for a lock took too long, or the server broke a deadlock by aborting us."""


class DeadlockError(LockTimeoutError):
    """The server aborted this transaction to break a deadlock or a serialization conflict
    (PostgreSQL 40P01/40001, MariaDB 1213); running the whole transaction again usually works."""
