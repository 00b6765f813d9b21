"""What a workflow run is asked to do, and how: the naive or the optimised pipeline.

Both modes run the same idempotent stages through the same job state machine; they differ only
in the three levers the notebooks measure, so a chart can put each lever's effect on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from opusclip_lib.config import work_dir
from opusclip_lib.db.models import Video
from opusclip_lib.media import Transcript, sample_video
from opusclip_lib.workflow.transcripts import transcript_for

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


def sample_source(youtube_id: str) -> Path:
    """The offline stand-in for downloading: every video's media is the bundled sample talk."""
    return sample_video()


@dataclass(frozen=True, slots=True)
class WorkflowConfig:
    """Knobs of one workflow run.

    ``max_clip_seconds`` trims each highlight (tests use 2-3 s clips to render fast);
    ``source`` and ``transcriber`` are the offline stand-ins for downloading and speech-to-text,
    replaceable in tests (a corrupt file, a silent transcript). Jobs send a heartbeat every
    ``heartbeat_s``; one silent for ``stale_after_s`` is requeued by any worker's reaper.
    A retryable failure waits ``retry_backoff_s * 2**(attempt-1)`` before the next attempt.
    """

    work_dir: Path = field(default_factory=lambda: work_dir() / "workflow")
    mode: Mode = OPTIMISED
    clips: int = 3
    render: bool = True
    captions: bool = True
    min_clip_seconds: float = 1.0
    max_clip_seconds: float | None = None
    voice_id: str = DEFAULT_VOICE
    source: Callable[[str], Path] = sample_source
    transcriber: Callable[[Video], Transcript] = transcript_for
    heartbeat_s: float = 5.0
    stale_after_s: float = 30.0
    max_attempts: int = 3
    retry_backoff_s: float = 2.0
    poll_s: float = 0.2
