"""Error tracking: every job failure recorded under a fingerprint, so failures group.

The fingerprint is what makes two failures "the same bug": the exception's type, the stage it
broke and the provider it came from, never the message (which carries ids and times). The
rows live in the database (:mod:`opusclip_lib.db.failures`), where every worker writes and any
notebook or dashboard reads the groups.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from opusclip_lib.db import DatabaseError, Executor
from opusclip_lib.db import failures as failure_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    exception_type: str
    stage: str | None
    provider: str | None

    @property
    def key(self) -> str:
        text = f"{self.exception_type}|{self.stage or ''}|{self.provider or ''}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def root_cause(error: BaseException) -> BaseException:
    """The first leaf of an exception group (a TaskGroup's failure), else ``error`` itself."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def fingerprint(error: BaseException, stage: str | None) -> Fingerprint:
    cause = root_cause(error)
    provider = getattr(cause, "provider", None)
    return Fingerprint(type(cause).__qualname__, stage,
                       provider if isinstance(provider, str) else None)


async def track_failure(ex: Executor, job_id: int, stage: str | None, error: BaseException, *,
                        code: str | None = None, message: str | None = None) -> Fingerprint:
    """Record one failure (and log it, at INFO, with its fingerprint); a database that cannot
    take the row gets a warning, never a second failure on top of the first."""
    found = fingerprint(error, stage)
    cause = root_cause(error)
    logger.info("failure recorded: %s", message or cause,
                extra={"stage": stage, "fingerprint": found.key,
                       "exception_type": found.exception_type, "error_code": code,
                       "request_id": getattr(cause, "request_id", None),
                       "provider": found.provider})
    try:
        await failure_rows.record_failure(ex, job_id, fingerprint=found.key,
                                          exception_type=found.exception_type, stage=stage,
                                          provider=found.provider, code=code, message=message)
    except DatabaseError as exc:
        logger.warning("failure of job %s not tracked: %s", job_id, exc)
    return found
