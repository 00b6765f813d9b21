"""Every deadline of the database layer, in one place.

A fault (a server that accepts TCP and never answers, a network partition, a session killed
in the middle of a COPY) must end in a typed error in bounded time, never in a hang. Each
deadline below is enforced by the layer itself with ``asyncio.timeout``, so it holds whatever
the driver does (asyncmy's ``connect_timeout`` stops at the TCP handshake, asyncpg's COPY has no
deadline of its own); when one expires the connection is closed, because its protocol state is
unknown, and the server process behind it is ended.

===================  =========  ============================================================
setting              default    bounds
===================  =========  ============================================================
``connect_s``        10         opening one connection: TCP, TLS, authentication, session
                                setup; twice that for the pool's first ones (a server that
                                never answers ends in ``OperationalError``)
``acquire_s``        10         waiting for a pooled connection, including opening a
                                replacement (``PoolTimeoutError``)
``statement_s``      60         one statement, ``executemany`` or ``COMMIT``: every socket
                                read it waits for (``StatementTimeoutError``)
``copy_s``           300        one ``bulk_insert`` (PostgreSQL COPY, multi-row INSERT)
``cleanup_s``        2          ending the server process of a discarded connection
``close_grace_s``    5          closing the pool waits this long for borrowed connections
``busy_timeout``     5000 ms    SQLite only, URL option: waiting for another process's write
===================  =========  ============================================================

Pass them to ``connect(url, timeouts=Timeouts(statement_s=5))``; ``acquire_timeout_s`` (the
``connect`` option) and ``acquire_timeout`` (the URL option, in seconds) set ``acquire_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

from opusclip_lib.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Timeouts:
    """The layer's deadlines in seconds (see the module docstring for what each bounds)."""

    connect_s: float = 10.0
    acquire_s: float = 10.0
    statement_s: float = 60.0
    copy_s: float = 300.0
    cleanup_s: float = 2.0
    close_grace_s: float = 5.0

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if not value > 0:  # also refuses NaN
                raise ConfigurationError(f"Timeouts.{name} must be a positive number of seconds, "
                                 f"got {value!r}")
