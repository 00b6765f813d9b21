"""What a workflow run is asked to do, and how: the naive or the optimised pipeline.

Both modes run the same idempotent stages through the same job state machine; they differ only
in the three levers the notebooks measure, so a chart can put each lever's effect on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from opusclip_lib.config import work_dir

if TYPE_CHECKING:  # the store's module imports the error tree, which this light module avoids
    from opusclip_lib.workflow.artifacts import ArtifactStore

KIND = "opusclip.workflow"
"""``processing_jobs.kind`` of a video's workflow job."""

DEFAULT_VOICE = "21m00Tcm4TlvDq8ikWAM"
"""ElevenLabs' long-standing premade voice "Rachel" (the sandbox knows it too)."""


@dataclass(frozen=True, slots=True)
class Mode:
    """``parallel``: many videos at once and a video's clips at once (else one at a time).
    ``cached``: API clients behind a resilience policy (response cache, retries, breaker,
    per-provider limits). ``batched``: a stage's rows and its job transition in one transaction,
    clip rows in one statement (else one autocommitted statement per row)."""

    name: str
    parallel: bool
    cached: bool
    batched: bool


NAIVE = Mode("naive", parallel=False, cached=False, batched=False)
OPTIMISED = Mode("optimised", parallel=True, cached=True, batched=True)


MAX_UPLOAD_BYTES = 24 * 1024 * 1024
"""Chunk bound under OpenAI's 25 MB transcription upload limit (multipart overhead included)."""

ProgressNote = Callable[[str, str], None]
"""``note(stage, message)``: how far a long stage got (a download's percentage)."""


@dataclass(frozen=True, slots=True)
class WorkflowConfig:
    """Knobs of one workflow run.

    ``max_clip_s`` trims each highlight (tests use 2-3 s clips to render fast).
    ``max_duration_s`` and ``max_download_bytes`` refuse a source that is too long or too big
    (checked before downloading when the page says, and again on the file).
    Transcription sends chunks of at most ``transcribe_chunk_bytes``, ``transcribe_concurrency``
    at a time (lower the bound to force several chunks). ``progress`` hears a long stage's notes
    (they also go to ``job_events``). Jobs send a heartbeat every
    ``heartbeat_s``; one silent for ``stale_after_s`` is requeued by any worker's reaper.
    A retryable failure waits ``retry_backoff_s * 2**(attempt-1)`` before the next attempt.
    ``artifacts`` is where finished artifacts are published for every worker (``None``: the work
    folder itself, the one-machine case); ``work_dir`` stays this worker's scratch.
    """

    work_dir: Path = field(default_factory=lambda: work_dir() / "workflow")
    artifacts: ArtifactStore | None = None
    mode: Mode = OPTIMISED
    clips: int = 3
    render: bool = True
    captions: bool = True
    voiceover: bool = True
    min_clip_s: float = 1.0
    max_clip_s: float | None = None
    voice_id: str = DEFAULT_VOICE
    max_duration_s: float | None = 4 * 3600.0
    max_download_bytes: int | None = 8 * 1024**3
    download_timeout_s: float = 30.0
    transcribe_chunk_bytes: int = MAX_UPLOAD_BYTES
    transcribe_concurrency: int = 4
    language: str | None = None
    progress: ProgressNote | None = None
    heartbeat_s: float = 5.0
    stale_after_s: float = 30.0
    max_attempts: int = 3
    retry_backoff_s: float = 2.0
    poll_s: float = 0.2
