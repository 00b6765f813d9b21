"""A durable job queue in the database, with a state machine and a reaper.

    pending -> downloading -> transcribing -> analyzing -> rendering -> completed
    downloading..rendering -> completed (a kind with fewer stages, e.g. an empty job)
    any unfinished status -> failed | cancelled
    downloading..rendering -> pending   (retryable failure with backoff, or reaped)

Every change is a *conditional* UPDATE (``WHERE id = ? AND status = <what we read>``), so two
workers racing on one job cannot both win; each change appends a row to ``job_events``.
:func:`claim` hands each pending job to exactly one worker: ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and MariaDB, the single SQLite writer otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from opusclip_lib.db import repository, validate
from opusclip_lib.db.backend import Row
from opusclip_lib.db.connection import Connection, Executor
from opusclip_lib.db.errors import (
    InvalidTransitionError,
    LeaseLostError,
    LockTimeoutError,
    NotFoundError,
    UniqueViolationError,
    ValidationError,
)
from opusclip_lib.db.models import Job, JobEvent
from opusclip_lib.db.schema import KEY_MAX, NAME_MAX, STATUS_MAX
from opusclip_lib.db.validate import Column

STAGES = ("downloading", "transcribing", "analyzing", "rendering")
ACTIVE = frozenset(STAGES)
# How often claim() runs its transaction when the server aborts it to break a deadlock.
CLAIM_ATTEMPTS = 20
FINISHED = frozenset({"completed", "failed", "cancelled"})
_FORWARD = dict(zip(("pending", *STAGES), (*STAGES, "completed"), strict=True))
# A claimed job may also finish early: a kind with fewer stages completes where its work ends.
_EARLY = {status: {"pending", "completed"} for status in ACTIVE}
ALLOWED: dict[str, frozenset[str]] = {
    status: frozenset({following, "failed", "cancelled", *_EARLY.get(status, ())})
    for status, following in _FORWARD.items()
} | {status: frozenset() for status in FINISHED}

JOBS = repository.Table("processing_jobs", [
    Column("kind", required=True, max_len=NAME_MAX),
    Column("video_id", "integer"),
    Column("payload", "json"),
    Column("max_attempts", "integer", low=1, high=validate.INT32_MAX),
    Column("idempotency_key", max_len=KEY_MAX),
    Column("status", max_len=STATUS_MAX),
    Column("stage", max_len=NAME_MAX),
    Column("progress", "number", low=0, high=1),
    Column("locked_by", max_len=NAME_MAX),
    Column("error_code", max_len=NAME_MAX),
    Column("error_message"),
])
_ACTIVE_MARKS = ", ".join("?" * len(STAGES))
# An event is stamped with the job row's ``updated_at`` (as the driver returned it), not a second
# clock reading: one change, one time, whether a feed reads it from the event (polling) or from
# the job (push).
_EVENT = ("INSERT INTO job_events (job_id, from_status, to_status, worker, message, created_at) "
          "VALUES (?, ?, ?, ?, ?, ?)")


async def enqueue(ex: Executor, kind: str, *, video_id: int | None = None, payload: Any = None,
                  idempotency_key: str | None = None, max_attempts: int = 3,
                  delay_s: float = 0.0) -> Job:
    """Add a pending job. With ``idempotency_key``, enqueueing twice returns the first job."""
    values = JOBS.changes({"kind": kind, "video_id": video_id, "payload": payload,
                           "max_attempts": max_attempts, "idempotency_key": idempotency_key})
    sql = (f"INSERT INTO processing_jobs ({', '.join(values)}, run_after) VALUES "
           f"({', '.join('?' * len(values))}, {ex.backend.now_plus()}) RETURNING *")
    params = (*values.values(), validate.seconds(delay_s, name="delay_s"))
    try:
        async with ex.transaction() as tx:
            row = await tx.fetchrow(sql, params, name="enqueue job")
            assert row is not None
            await _event(tx, row, None, "pending", None, "enqueued")
    except UniqueViolationError:
        if idempotency_key is None:
            raise
        existing = await repository.find_one(ex, JOBS, "idempotency_key", idempotency_key)
        if existing is None:  # deleted in between: rare enough to report, not to retry
            raise
        row = existing
    return Job.from_row(row)


async def get_job(ex: Executor, job_id: int) -> Job:
    """Raises ``NotFoundError``."""
    return Job.from_row(await repository.get_one(ex, JOBS, job_id))


async def list_jobs(ex: Executor, *, status: str | None = None, kind: str | None = None,
                    video_id: int | None = None, limit: int = 100) -> list[Job]:
    rows = await repository.list_where(ex, JOBS, {"status": status, "kind": kind,
                                                  "video_id": video_id}, limit=limit)
    return [Job.from_row(row) for row in rows]


async def job_events(ex: Executor, job_id: int) -> list[JobEvent]:
    rows = await ex.fetch("SELECT * FROM job_events WHERE job_id = ? ORDER BY id",
                          (validate.row_id(job_id, name="job_id"),), name="job events")
    return [JobEvent.from_row(row) for row in rows]


async def job_statuses(ex: Executor, job_ids: Sequence[int]) -> dict[int, str]:
    """The status of each of ``job_ids`` that exists."""
    rows = await repository.fetch_in(ex, "SELECT id, status FROM processing_jobs WHERE id IN "
                                     "({marks})", job_ids, name="job statuses")
    return {int(row["id"]): str(row["status"]) for row in rows}


async def count_by_status(ex: Executor, job_ids: Sequence[int]) -> dict[str, int]:
    """Jobs per status among ``job_ids`` (a few rows per chunk, however many jobs)."""
    rows = await repository.fetch_in(ex, "SELECT status, count(*) AS n FROM processing_jobs "
                                     "WHERE id IN ({marks}) GROUP BY status", job_ids,
                                     name="job status counts")
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row["status"])] = counts.get(str(row["status"]), 0) + int(row["n"])
    return counts


async def status_history(ex: Executor, kind: str) -> list[Row]:
    """Every status change of jobs of ``kind``, by job then in order, with the video's YouTube
    id (``job_id, to_status, worker, message, created_at, youtube_id``)."""
    return await ex.fetch(
        "SELECT e.job_id, e.to_status, e.worker, e.message, e.created_at, v.youtube_id "
        "FROM job_events e JOIN processing_jobs j ON j.id = e.job_id "
        "LEFT JOIN videos v ON v.id = j.video_id WHERE j.kind = ? ORDER BY e.job_id, e.id",
        (kind,), name="status timeline")


async def last_event_id(ex: Executor) -> int:
    """The newest job event's id (0 if none): where a feed of new events starts."""
    return int(await ex.fetchval("SELECT COALESCE(max(id), 0) FROM job_events",
                                 name="feed watermark"))


async def events_after(ex: Executor, event_id: int, *, limit: int) -> list[Row]:
    """Up to ``limit`` job events after ``event_id``, oldest first, each with its job's kind,
    video, stage and progress (``event_id, job_id, from_status, status, worker, message, at,
    kind, video_id, stage, progress``)."""
    return await ex.fetch(
        "SELECT e.id AS event_id, e.job_id, e.from_status, e.to_status AS status, e.worker, "
        "e.message, e.created_at AS at, j.kind, j.video_id, j.stage, j.progress "
        "FROM job_events e JOIN processing_jobs j ON j.id = e.job_id "
        "WHERE e.id > ? ORDER BY e.id LIMIT ?", (event_id, limit), name="feed poll")


async def queue_counts(ex: Executor) -> dict[str, int]:
    """Jobs per status, e.g. ``{"pending": 3, "completed": 10}``."""
    rows = await ex.fetch("SELECT status, count(*) AS n FROM processing_jobs GROUP BY status",
                          name="queue counts")
    return {row["status"]: int(row["n"]) for row in rows}


async def claim(ex: Executor, worker: str, *, kinds: Sequence[str] | None = None,
                limit: int = 1) -> list[Job]:
    """Take up to ``limit`` due pending jobs for ``worker`` (-> ``downloading``, attempts + 1).

    A job is returned to exactly one caller however many workers claim at the same time.
    Claimers racing for the same rows can deadlock (MariaDB locks index gaps even with SKIP
    LOCKED) or fail to serialize; the server then aborts one transaction, and ``claim`` runs it
    again, up to :data:`CLAIM_ATTEMPTS` times with jittered backoff. Inside the caller's own
    transaction it cannot (the abort undid the caller's earlier work too), so the error
    reaches the caller, who retries the whole transaction.
    """
    if not worker:
        raise ValidationError("claim() needs the worker's name (it becomes locked_by)")
    JOBS.changes({"locked_by": worker})
    if isinstance(kinds, str):
        raise ValidationError(f"kinds is a list of job kinds, got the string {kinds!r}")
    kinds = [JOBS.lookup("kind", kind) for kind in kinds or ()]
    if isinstance(ex, Connection) and ex.in_transaction:
        return await _claim(ex, worker, kinds, limit)
    retrying = AsyncRetrying(retry=retry_if_exception_type(LockTimeoutError),
                             stop=stop_after_attempt(CLAIM_ATTEMPTS),
                             wait=wait_random_exponential(multiplier=0.01, max=0.25),
                             reraise=True)
    return await retrying(_claim, ex, worker, kinds, limit)


async def _claim(ex: Executor, worker: str, kinds: Sequence[str], limit: int) -> list[Job]:
    backend = ex.backend
    kind_filter = f" AND kind IN ({', '.join('?' * len(kinds))})" if kinds else ""
    due = (f"SELECT id FROM processing_jobs WHERE status = 'pending' AND run_after <= "
           f"{backend.now}{kind_filter} ORDER BY run_after, id LIMIT ?{backend.skip_locked}")
    due_params = (*kinds, validate.count(limit, name="limit"))
    take = (f"UPDATE processing_jobs SET status = 'downloading', locked_by = ?, "
            f"heartbeat_at = {backend.now}, attempts = attempts + 1, updated_at = {backend.now}")
    async with ex.transaction() as tx:
        if backend.update_returning:
            # A materialized CTE runs the locking SELECT exactly once; as a plain IN (subquery)
            # the planner may rescan it per row and take far more than ``limit`` jobs.
            rows = await tx.fetch(
                f"WITH due AS MATERIALIZED ({due}) {take} "
                "WHERE id IN (SELECT id FROM due) AND status = 'pending' RETURNING *",
                (*due_params, worker), name="claim jobs")
        else:
            ids = [row["id"] for row in await tx.fetch(due, due_params, name="claim jobs")]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            await tx.execute(f"{take} WHERE id IN ({marks}) AND status = 'pending'",
                             (worker, *ids), name="claim jobs")
            rows = await tx.fetch(f"SELECT * FROM processing_jobs WHERE id IN ({marks})", ids,
                                  name="claim jobs")
        jobs = sorted((Job.from_row(row) for row in rows), key=lambda j: (j.run_after, j.id))
        stamps = {row["id"]: row["updated_at"] for row in rows}
        await tx.executemany(
            _EVENT, [(job.id, "pending", "downloading", worker, f"claimed, attempt {job.attempts}",
                      stamps[job.id]) for job in jobs], name="job event")
    return jobs


async def advance(ex: Executor, job_id: int, to_status: str, *, worker: str,
                  stage: str | None = None, progress: float | None = None) -> Job:
    """Move a claimed job forward (e.g. ``downloading`` -> ``transcribing``, ... ``completed``).

    Raises ``LeaseLostError`` if ``worker`` no longer holds the job (reaped, claimed by another
    worker, cancelled) and ``InvalidTransitionError`` for a move the state machine forbids.
    """
    if to_status not in (*STAGES, "completed"):
        raise InvalidTransitionError(f"advance() moves forward only; use fail() or cancel() for "
                                f"{to_status!r}")
    JOBS.changes({"stage": stage, "progress": progress})
    done = to_status == "completed"
    now = ex.backend.now
    assignments = (f"stage = ?, progress = ?, heartbeat_at = {now}, "
                   + (f"finished_at = {now}, locked_by = NULL, " if done else ""))
    async with ex.transaction() as tx:
        job = await get_job(tx, job_id)
        if done:
            progress = 1.0
        else:
            stage = stage if stage is not None else job.stage
            progress = progress if progress is not None else job.progress
        return await _transition(tx, job, to_status, worker=worker, assignments=assignments,
                                 params=(stage, progress))


async def complete(ex: Executor, job_ids: Sequence[int], *, worker: str) -> list[Job]:
    """Finish many claimed jobs in one transaction (a locking read, one ``UPDATE`` and one batch
    of events per chunk), so a worker running short jobs commits once per batch, not per job.

    Returns the jobs completed, in ``job_ids`` order. A job ``worker`` no longer holds (reaped,
    cancelled, never claimed) is left as it is and missing from the result: its lease was lost.
    """
    ids = [validate.row_id(job_id, name="job_id") for job_id in job_ids]
    holder = JOBS.lookup("locked_by", worker)
    order = {job_id: index for index, job_id in enumerate(ids)}
    rows: list[Row] = []
    async with ex.transaction() as tx:
        for start in range(0, len(ids), repository.IN_CHUNK):
            rows += await _complete(tx, ids[start:start + repository.IN_CHUNK], holder)
    return sorted((Job.from_row(row) for row in rows), key=lambda job: order[job.id])


async def _complete(tx: Executor, ids: Sequence[int], worker: str) -> list[Row]:
    backend = tx.backend
    lock = " FOR UPDATE" if backend.skip_locked else ""
    held = {row["id"]: row["status"] for row in await tx.fetch(
        f"SELECT id, status FROM processing_jobs WHERE id IN ({', '.join('?' * len(ids))}) "
        f"AND locked_by = ? AND status IN ({_ACTIVE_MARKS}){lock}", (*ids, worker, *STAGES),
        name="complete jobs")}
    if not held:
        return []
    marks = ", ".join("?" * len(held))
    now = backend.now
    finish = (f"UPDATE processing_jobs SET status = 'completed', progress = 1, "
              f"heartbeat_at = {now}, finished_at = {now}, locked_by = NULL, updated_at = {now} "
              f"WHERE id IN ({marks})")
    if backend.update_returning:
        rows = await tx.fetch(f"{finish} RETURNING *", tuple(held), name="complete jobs")
    else:
        await tx.execute(finish, tuple(held), name="complete jobs")
        rows = await tx.fetch(f"SELECT * FROM processing_jobs WHERE id IN ({marks})",
                              tuple(held), name="complete jobs")
    await tx.executemany(_EVENT, [(row["id"], held[row["id"]], "completed", worker, None,
                                   row["updated_at"]) for row in rows], name="job event")
    return rows


async def heartbeat(ex: Executor, job_id: int, worker: str, *, progress: float | None = None,
                    stage: str | None = None) -> None:
    """Tell the reaper ``worker`` is alive; ``LeaseLostError`` means stop working on this job."""
    JOBS.changes({"stage": stage, "progress": progress})
    now = ex.backend.now
    changed = await ex.execute(
        f"UPDATE processing_jobs SET heartbeat_at = {now}, updated_at = {now}, "
        f"progress = COALESCE(?, progress), stage = COALESCE(?, stage) "
        f"WHERE id = ? AND locked_by = ? AND status IN ({_ACTIVE_MARKS})",
        (progress, stage, validate.row_id(job_id, name="job_id"),
         JOBS.lookup("locked_by", worker), *STAGES), name="heartbeat")
    if not changed:
        raise LeaseLostError(f"job {job_id} is no longer held by {worker!r} (reaped, cancelled or "
                        "finished)", backend=ex.backend.name)


async def fail(ex: Executor, job_id: int, *, code: str, message: str, worker: str | None = None,
               retryable: bool = False, backoff_s: float = 1.0,
               max_backoff_s: float = 300.0) -> Job:
    """Record a failure. Retryable, with attempts left: back to ``pending`` after
    ``backoff_s * 2**(attempts-1)`` seconds (capped); otherwise ``failed`` for good."""
    JOBS.changes({"error_code": code, "error_message": message})
    now = ex.backend.now
    async with ex.transaction() as tx:
        job = await get_job(tx, job_id)
        if retryable and job.status in ACTIVE and job.attempts < job.max_attempts:
            delay = min(backoff_s * 2 ** max(job.attempts - 1, 0), max_backoff_s)
            return await _transition(
                tx, job, "pending", worker=worker, message=f"{code}: retry in {delay:g} s",
                assignments=(f"run_after = {ex.backend.now_plus()}, locked_by = NULL, "
                             "heartbeat_at = NULL, error_code = ?, error_message = ?, "),
                params=(delay, code, message))
        return await _transition(
            tx, job, "failed", worker=worker, message=code,
            assignments=(f"finished_at = {now}, locked_by = NULL, error_code = ?, "
                         "error_message = ?, "),
            params=(code, message))


async def defer(ex: Executor, job_id: int, *, worker: str, delay_s: float, code: str,
                message: str) -> Job:
    """Hand a claimed job back to ``pending`` for ``delay_s`` seconds *without* spending its
    attempt: the cause (an open circuit breaker) refused the work before trying it, and said
    when to come back. Raises ``LeaseLostError`` if ``worker`` no longer holds the job."""
    JOBS.changes({"error_code": code, "error_message": message})
    delay = validate.seconds(delay_s, name="delay_s")
    async with ex.transaction() as tx:
        job = await get_job(tx, job_id)
        return await _transition(
            tx, job, "pending", worker=worker,
            message=f"{code}: deferred {delay:g} s, attempt not spent",
            assignments=(f"run_after = {ex.backend.now_plus()}, locked_by = NULL, "
                         "heartbeat_at = NULL, attempts = attempts - 1, error_code = ?, "
                         "error_message = ?, "),
            params=(delay, code, message))


async def cancel(ex: Executor, job_id: int, *, reason: str | None = None) -> Job:
    """Stop a job whatever its stage; its worker finds out at its next heartbeat."""
    async with ex.transaction() as tx:
        job = await get_job(tx, job_id)
        return await _transition(tx, job, "cancelled", message=reason,
                                 assignments=f"finished_at = {ex.backend.now}, locked_by = NULL, ")


async def reap_stale(ex: Executor, *, stale_after_s: float) -> list[Job]:
    """Requeue running jobs whose worker has not sent a heartbeat for ``stale_after_s`` seconds
    (or fail them when no attempts are left). Run it periodically from any one process."""
    backend = ex.backend
    reaped = []
    async with ex.transaction() as tx:
        rows = await tx.fetch(
            f"SELECT * FROM processing_jobs WHERE status IN ({_ACTIVE_MARKS}) AND heartbeat_at < "
            f"{backend.now_plus()} ORDER BY id{backend.skip_locked}",
            (*STAGES, -validate.seconds(stale_after_s, name="stale_after_s")),
            name="find stale jobs")
        for job in map(Job.from_row, rows):
            message = f"no heartbeat from {job.locked_by} for {stale_after_s:g} s"
            retry = job.attempts < job.max_attempts
            assignments = ("locked_by = NULL, heartbeat_at = NULL, error_code = 'stale_heartbeat',"
                           " error_message = ?, "
                           + (f"run_after = {backend.now}, " if retry
                              else f"finished_at = {backend.now}, "))
            reaped.append(await _transition(tx, job, "pending" if retry else "failed",
                                            message=message, assignments=assignments,
                                            params=(message,)))
    return reaped


async def _transition(tx: Executor, job: Job, to_status: str, *, worker: str | None = None,
                      assignments: str = "", params: tuple[Any, ...] = (),
                      message: str | None = None) -> Job:
    """Check the lease and the move against the state machine, then make the move only if
    nobody moved first.

    The lease comes first: a worker whose job was reaped or cancelled must hear ``LeaseLostError``
    (stop), not ``InvalidTransitionError`` (a bug in the worker), whatever status the job is in now.
    """
    if worker is not None and await _lost(tx, job, worker):
        raise _lease_lost(job, worker, tx.backend.name)
    if to_status not in ALLOWED[job.status]:
        allowed = ", ".join(sorted(ALLOWED[job.status])) or "nothing (finished)"
        raise InvalidTransitionError(f"job {job.id}: cannot go from {job.status} to {to_status}; "
                                f"allowed: {allowed}", backend=tx.backend.name)
    if worker is not None and job.locked_by != worker:  # an unclaimed job: not its to move
        raise _lease_lost(job, worker, tx.backend.name)
    condition = " AND status = ?" + (" AND locked_by = ?" if worker is not None else "")
    row: Row | None = await repository.update_returning(
        tx, "processing_jobs", job.id,
        f"status = ?, {assignments}updated_at = {tx.backend.now}", (to_status, *params),
        condition=condition,
        condition_params=(job.status, *([worker] if worker is not None else [])),
        name=f"job -> {to_status}")
    if row is None:
        if worker is not None:  # held when read: a reaper or cancel committed in between
            current = await _read_latest(tx, job.id)
            if current.locked_by != worker:
                raise _lease_lost(current, worker, tx.backend.name)
        raise InvalidTransitionError(
            f"job {job.id} changed while moving {job.status} -> {to_status}; re-read it",
            backend=tx.backend.name)
    await _event(tx, row, job.status, to_status, worker, message)
    return Job.from_row(row)


async def _lost(tx: Executor, job: Job, worker: str) -> bool:
    """Whether ``worker`` lost ``job``: another worker holds it, or nobody does although
    ``worker`` claimed it once. A job ``worker`` never held, and nobody holds, is not lost; the
    state machine says what is wrong with moving it."""
    if job.locked_by is not None:
        return job.locked_by != worker
    claimed = await tx.fetchval(
        "SELECT count(*) FROM job_events WHERE job_id = ? AND to_status = 'downloading' "
        "AND worker = ?", (job.id, worker), name="job claimed by")
    return int(claimed) > 0


def _lease_lost(job: Job, worker: str, backend: str) -> LeaseLostError:
    if job.locked_by is not None:
        return LeaseLostError(f"job {job.id} is held by {job.locked_by!r}, not {worker!r}",
                         backend=backend)
    return LeaseLostError(f"job {job.id} is {job.status} and held by nobody, not by {worker!r}",
                     backend=backend)


async def _read_latest(tx: Executor, job_id: int) -> Job:
    """The job as last committed, even in a transaction that read it before: a locking read
    sees past MySQL's REPEATABLE READ snapshot. SQLite, the backend without ``skip_locked``, has
    one writer and no row locks: its plain read is the latest."""
    lock = " FOR UPDATE" if tx.backend.skip_locked else ""
    row = await tx.fetchrow(f"SELECT * FROM processing_jobs WHERE id = ?{lock}", (job_id,),
                            name="re-read job")
    if row is None:
        raise NotFoundError(f"job {job_id} was deleted while moving", backend=tx.backend.name)
    return Job.from_row(row)


async def _event(tx: Executor, job: Row, from_status: str | None, to_status: str,
                 worker: str | None, message: str | None) -> None:
    """Log the change ``job`` (the row as it was just written) went through."""
    await tx.execute(_EVENT, (job["id"], from_status, to_status, worker, message,
                              job["updated_at"]), name="job event")
