"""Versioned, idempotent migrations, written once for all three backends.

Each migration is a function of the backend's SQL vocabulary (``b.primary_key``,
``b.timestamp``, ...) returning DDL statements. ``migrate`` applies the ones missing from
``schema_version``, each in a transaction with its version row; every statement is also
``IF NOT EXISTS``, because MySQL commits DDL immediately and a half-applied migration must be
safe to run again. Two processes migrating at once is fine: the loser's version insert hits the
primary key and is ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opusclip_lib.db.backend import Backend
from opusclip_lib.db.connection import Executor
from opusclip_lib.db.errors import UniqueViolationError

# Column limits, shared by the DDL and the Python-side validation.
YOUTUBE_ID_LENGTH = 11
URL_MAX = 2048
TITLE_MAX = 500
NAME_MAX = 200
HOOK_MAX = 1000
PATH_MAX = 1024
STATUS_MAX = 20
KEY_MAX = 200
SHA256_LENGTH = 64

JOB_STATUSES = ("pending", "downloading", "transcribing", "analyzing", "rendering",
                "completed", "failed", "cancelled")
# Children first: the order to delete or drop in.
TABLES = ("job_outbox", "workers", "api_calls", "job_failures", "job_events", "processing_jobs",
          "clips", "videos")


def _stamps(b: Backend) -> str:
    return (f"created_at {b.timestamp} NOT NULL DEFAULT ({b.now}),\n"
            f"  updated_at {b.timestamp} NOT NULL DEFAULT ({b.now})")


def _videos_and_clips(b: Backend) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS videos (
  id {b.primary_key},
  youtube_id VARCHAR({YOUTUBE_ID_LENGTH}) NOT NULL,
  url VARCHAR({URL_MAX}) NOT NULL,
  title VARCHAR({TITLE_MAX}),
  channel VARCHAR({NAME_MAX}),
  duration_s {b.double} CHECK (duration_s >= 0),
  metadata {b.json_type("metadata")},
  status VARCHAR({STATUS_MAX}) NOT NULL DEFAULT 'new',
  {_stamps(b)},
  CONSTRAINT videos_youtube_id_key UNIQUE (youtube_id)
){b.table_options}""",
        "CREATE INDEX IF NOT EXISTS videos_status_idx ON videos (status)",
        f"""CREATE TABLE IF NOT EXISTS clips (
  id {b.primary_key},
  video_id {b.reference} NOT NULL,
  ranking INTEGER NOT NULL DEFAULT 0,
  start_s {b.double} NOT NULL CHECK (start_s >= 0),
  end_s {b.double} NOT NULL,
  title VARCHAR({TITLE_MAX}),
  hook VARCHAR({HOOK_MAX}),
  virality_score {b.double} CHECK (virality_score BETWEEN 0 AND 100),
  transcript TEXT,
  clip_path VARCHAR({PATH_MAX}),
  thumbnail_path VARCHAR({PATH_MAX}),
  voiceover_path VARCHAR({PATH_MAX}),
  status VARCHAR({STATUS_MAX}) NOT NULL DEFAULT 'pending',
  {_stamps(b)},
  CONSTRAINT clips_video_fk FOREIGN KEY (video_id) REFERENCES videos (id) ON DELETE CASCADE,
  CONSTRAINT clips_end_after_start CHECK (end_s > start_s),
  CONSTRAINT clips_span_key UNIQUE (video_id, start_s, end_s)
){b.table_options}""",
    ]


def _jobs(b: Backend) -> list[str]:
    statuses = ", ".join(f"'{s}'" for s in JOB_STATUSES)
    return [
        f"""CREATE TABLE IF NOT EXISTS processing_jobs (
  id {b.primary_key},
  kind VARCHAR({NAME_MAX}) NOT NULL,
  video_id {b.reference},
  payload {b.json_type("payload")},
  status VARCHAR({STATUS_MAX}) NOT NULL DEFAULT 'pending',
  stage VARCHAR({NAME_MAX}),
  progress {b.double} NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL DEFAULT 3,
  run_after {b.timestamp} NOT NULL DEFAULT ({b.now}),
  locked_by VARCHAR({NAME_MAX}),
  heartbeat_at {b.timestamp} NULL,
  idempotency_key VARCHAR({KEY_MAX}),
  error_code VARCHAR({NAME_MAX}),
  error_message TEXT,
  {_stamps(b)},
  finished_at {b.timestamp} NULL,
  CONSTRAINT jobs_video_fk FOREIGN KEY (video_id) REFERENCES videos (id) ON DELETE CASCADE,
  CONSTRAINT jobs_status_check CHECK (status IN ({statuses})),
  CONSTRAINT jobs_progress_check CHECK (progress BETWEEN 0 AND 1),
  CONSTRAINT jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1),
  CONSTRAINT jobs_idempotency_key UNIQUE (idempotency_key)
){b.table_options}""",
        "CREATE INDEX IF NOT EXISTS jobs_queue_idx ON processing_jobs (status, run_after)",
        f"""CREATE TABLE IF NOT EXISTS job_events (
  id {b.primary_key},
  job_id {b.reference} NOT NULL,
  from_status VARCHAR({STATUS_MAX}),
  to_status VARCHAR({STATUS_MAX}) NOT NULL,
  worker VARCHAR({NAME_MAX}),
  message TEXT,
  created_at {b.timestamp} NOT NULL DEFAULT ({b.now}),
  CONSTRAINT job_events_job_fk FOREIGN KEY (job_id) REFERENCES processing_jobs (id)
    ON DELETE CASCADE
){b.table_options}""",
        "CREATE INDEX IF NOT EXISTS job_events_job_idx ON job_events (job_id, id)",
    ]


def _api_calls(b: Backend) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS api_calls (
  id {b.primary_key},
  provider VARCHAR({NAME_MAX}) NOT NULL,
  endpoint VARCHAR({NAME_MAX}) NOT NULL,
  request_hash CHAR(64) NOT NULL,
  status INTEGER NOT NULL,
  latency_s {b.double} NOT NULL,
  cost_usd {b.double} NOT NULL DEFAULT 0,
  response {b.json_type("response")},
  created_at {b.timestamp} NOT NULL DEFAULT ({b.now})
){b.table_options}""",
        "CREATE INDEX IF NOT EXISTS api_calls_lookup_idx "
        "ON api_calls (provider, endpoint, request_hash, created_at)",
    ]


def _job_failures(b: Backend) -> list[str]:
    """One row per job failure, grouped by fingerprint in :mod:`opusclip_lib.db.failures`."""
    return [
        f"""CREATE TABLE IF NOT EXISTS job_failures (
  id {b.primary_key},
  job_id {b.reference} NOT NULL,
  fingerprint CHAR(16) NOT NULL,
  exception_type VARCHAR({NAME_MAX}) NOT NULL,
  stage VARCHAR({NAME_MAX}),
  provider VARCHAR({NAME_MAX}),
  code VARCHAR({NAME_MAX}),
  message TEXT,
  created_at {b.timestamp} NOT NULL DEFAULT ({b.now}),
  CONSTRAINT job_failures_job_fk FOREIGN KEY (job_id) REFERENCES processing_jobs (id)
    ON DELETE CASCADE
){b.table_options}""",
        "CREATE INDEX IF NOT EXISTS job_failures_group_idx ON job_failures (fingerprint, "
        "created_at)",
        "CREATE INDEX IF NOT EXISTS job_failures_time_idx ON job_failures (created_at)",
    ]


def _video_sources(b: Backend) -> list[str]:
    """Videos that are not on YouTube: a file or a web page. ``source`` is what the user gave
    (an absolute path or a URL; NULL for a YouTube id), ``content_sha256`` the media's hash, the
    idempotency key of a file (the same file given twice is one video)."""
    add = "ADD COLUMN" if b.name == "sqlite" else "ADD COLUMN IF NOT EXISTS"  # SQLite: see below
    return [
        f"ALTER TABLE videos {add} source VARCHAR({URL_MAX})",
        f"ALTER TABLE videos {add} content_sha256 CHAR({SHA256_LENGTH})",
        "CREATE UNIQUE INDEX IF NOT EXISTS videos_content_sha256_key ON videos (content_sha256)",
    ]


def _outbox(b: Backend) -> list[str]:
    """Distributed workers: ``job_outbox`` holds, per enqueued job, the wake-up a relay still
    has to publish to the broker (``sent_at`` NULL until it did; the trace carrier is in the
    job's payload); ``workers`` is each worker
    process's last sign of life, what ``opusclip status`` counts as alive."""
    return [
        f"""CREATE TABLE IF NOT EXISTS job_outbox (
  id {b.primary_key},
  job_id {b.reference} NOT NULL,
  created_at {b.timestamp} NOT NULL DEFAULT ({b.now}),
  sent_at {b.timestamp} NULL,
  CONSTRAINT job_outbox_job_fk FOREIGN KEY (job_id) REFERENCES processing_jobs (id)
    ON DELETE CASCADE
){b.table_options}""",
        "CREATE INDEX IF NOT EXISTS job_outbox_unsent_idx ON job_outbox (sent_at, id)",
        f"""CREATE TABLE IF NOT EXISTS workers (
  id {b.primary_key},
  name VARCHAR({NAME_MAX}) NOT NULL,
  broker VARCHAR({NAME_MAX}),
  started_at {b.timestamp} NOT NULL DEFAULT ({b.now}),
  seen_at {b.timestamp} NOT NULL DEFAULT ({b.now}),
  CONSTRAINT workers_name_key UNIQUE (name)
){b.table_options}""",
    ]


def _attempts_index(b: Backend) -> list[str]:
    """The failure-rate alert counts attempts started in a recent window
    (``failures.failure_rate``); without this index that is a scan of every event ever kept."""
    return ["CREATE INDEX IF NOT EXISTS job_events_status_time_idx "
            "ON job_events (to_status, created_at)"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[Backend], list[str]]


MIGRATIONS = (
    Migration(1, "videos and clips", _videos_and_clips),
    Migration(2, "job queue", _jobs),
    Migration(3, "api call log and response cache", _api_calls),
    Migration(4, "job failures for error tracking", _job_failures),
    Migration(5, "videos from files and web pages", _video_sources),
    Migration(6, "job outbox and worker liveness", _outbox),
    Migration(7, "job events by status and time", _attempts_index),
)


async def migrate(db: Executor) -> int:
    """Bring the schema up to date; safe to call at every start. Returns the schema version."""
    b = db.backend
    await db.execute(
        f"CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
        f"name VARCHAR({NAME_MAX}) NOT NULL, applied_at {b.timestamp} NOT NULL DEFAULT ({b.now})"
        f"){b.table_options}", name="migrate")
    applied = {row["version"] for row in await db.fetch("SELECT version FROM schema_version",
                                                        name="migrate")}
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        try:
            async with db.transaction() as tx:
                # Applied since the read above, by another process? SQLite has no ADD COLUMN
                # IF NOT EXISTS; its BEGIN IMMEDIATE makes this check and the DDL one step.
                if await tx.fetchval("SELECT count(*) FROM schema_version WHERE version = ?",
                                     (migration.version,), name="migrate"):
                    continue
                for statement in migration.statements(b):
                    await tx.execute(statement, name=f"migrate v{migration.version}")
                await tx.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)",
                                 (migration.version, migration.name), name="migrate")
        except UniqueViolationError:
            pass  # another process applied this version first
    return MIGRATIONS[-1].version


async def schema_version(db: Executor) -> int:
    return int(await db.fetchval("SELECT max(version) FROM schema_version",
                                 name="schema version") or 0)


async def reset(db: Executor) -> int:
    """Drop every table and migrate again: an empty schema for a clean demo."""
    for table in (*TABLES, "schema_version"):
        await db.execute(f"DROP TABLE IF EXISTS {table}", name="reset")
    return await migrate(db)


async def clear(db: Executor) -> None:
    """Delete all rows but keep the schema (fast; what tests use between cases)."""
    async with db.transaction() as tx:
        for table in TABLES:
            await tx.execute(f"DELETE FROM {table}", name="clear")
