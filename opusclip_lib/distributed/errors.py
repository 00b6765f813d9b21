"""Broker failures, in the library's one error tree (:mod:`opusclip_lib.errors`)."""

from __future__ import annotations

from opusclip_lib.errors import OpusClipError, TransientError


class BrokerError(OpusClipError):
    """The message broker failed; ``broker`` is its kind, ``url`` its address without
    credentials."""

    def __init__(self, message: str, *, broker: str, url: str) -> None:
        super().__init__(message)
        self.broker = broker
        self.url = url


class BrokerUnavailableError(BrokerError, TransientError):
    """The broker could not be reached or refused the message; nothing is lost, the wake-ups
    wait in the outbox until a relay reaches it."""
