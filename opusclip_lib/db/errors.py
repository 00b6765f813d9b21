"""One exception hierarchy for all three backends.

Callers catch :class:`UniqueViolation` or :class:`ConnectionLost`, never ``asyncpg``,
``asyncmy`` or ``sqlite3`` errors: each backend module maps its driver's native errors here,
and keeps the original as ``__cause__`` for debugging.
"""

from __future__ import annotations


class DatabaseError(Exception):
    """Root of every error raised by :mod:`opusclip_lib.db`."""

    def __init__(self, message: str, *, backend: str | None = None,
                 constraint: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend
        self.constraint = constraint


class ConfigurationError(DatabaseError):
    """The URL or an option is wrong; nothing was sent to a server."""


class ValidationError(DatabaseError, ValueError):
    """Input rejected before any SQL ran."""


class InvalidYouTubeId(ValidationError):
    """A YouTube id is exactly 11 characters of ``[A-Za-z0-9_-]``."""


class InvalidUrl(ValidationError):
    """Only absolute http(s) URLs are stored."""


class ValueTooLong(ValidationError):
    """A string is longer than its column allows (checked in Python and by the server)."""


class IntegrityError(DatabaseError):
    """The database refused a write because a constraint would be broken."""


class UniqueViolation(IntegrityError):
    """A row with the same unique key already exists."""


class CheckViolation(IntegrityError):
    """A CHECK constraint failed (e.g. a clip whose end is not after its start)."""


class ForeignKeyViolation(IntegrityError):
    """The referenced row does not exist, or is still referenced."""


class NotNullViolation(IntegrityError):
    """A required column was NULL."""


class NotFound(DatabaseError, LookupError):
    """No row with that key."""


class InvalidTransition(DatabaseError):
    """A job status change the state machine does not allow (or someone else got there first)."""


class LeaseLost(InvalidTransition):
    """The worker no longer owns the job (reaped, cancelled or claimed by another worker)."""


class ConnectionShared(DatabaseError):
    """A task used a connection that another task acquired; each task must acquire its own."""


class QueryError(DatabaseError):
    """The SQL itself is wrong (syntax, unknown table or column)."""


class OperationalError(DatabaseError):
    """The server or the connection failed; retrying may help."""


class ConnectionLost(OperationalError):
    """The connection died mid-use; its transaction, if any, was rolled back by the server
    (raised by ``COMMIT`` itself, the outcome is unknown: see ``Connection.transaction``)."""

    @classmethod
    def of(cls, backend: str, detail: object) -> ConnectionLost:
        return cls(f"lost the connection to {backend} ({detail}); the server rolled back any "
                   "open transaction, and the pool will open a new connection", backend=backend)


class StatementTimeout(OperationalError, TimeoutError):
    """The server did not answer within the statement (or COPY) deadline: a hung server or a
    partition. The connection was closed, so the server rolls back its open transaction."""


class PoolTimeout(OperationalError, TimeoutError):
    """No pooled connection became free within the acquire timeout."""


class LockTimeout(OperationalError):
    """Waiting for a lock took too long, or the server broke a deadlock by aborting us."""


class Deadlock(LockTimeout):
    """The server aborted this transaction to break a deadlock or a serialization conflict
    (PostgreSQL 40P01/40001, MariaDB 1213); running the whole transaction again usually works."""
