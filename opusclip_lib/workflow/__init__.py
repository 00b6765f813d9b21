"""The whole Video-OpusClip workflow as durable jobs: a video (YouTube, a web page, a file) ->
DB -> download -> OpenAI transcription -> OpenAI highlights -> clip rows -> ffmpeg 9:16 renders
-> Stability thumbnails -> ElevenLabs voice-overs.

::

    from opusclip_lib.db import connect
    from opusclip_lib.sandbox import SandboxConfig, build_app
    from opusclip_lib.sandbox.endpoints import sandbox_endpoints
    from opusclip_lib.workflow import WorkflowConfig, open_services, run_batch, run_video

    endpoints = sandbox_endpoints(build_app(SandboxConfig()))   # or endpoints_from_env()
    async with connect(url) as db, open_services(endpoints) as services:
        job = await run_video(db, services, "opusSample1", WorkflowConfig(max_clip_s=3))
        report = await run_batch(db, services, ids, WorkflowConfig(render=False),
                                 concurrency=8, recorder=recorder, progress=True)
        report.videos_per_min

``WorkflowConfig(mode=NAIVE)`` with ``open_services(..., cached=NAIVE.cached)`` runs the naive
pipeline (one video and one clip at a time, no resilience policy, one commit per row) over the
same stages, for comparison.
``recorder.frame("stage")`` is every stage run (one row per video and stage: the Gantt data,
:func:`opusclip_lib.charts.pipeline.stage_gantt`); :func:`status_timeline` reads the same story
back from ``job_events``, across crashes and restarts. A separate worker process:
``python -m opusclip_lib.workflow.worker --database-url URL --videos ID,ID``; one video from
the command line, files out: ``opusclip clip SOURCE`` (:mod:`opusclip_lib.workflow.clip`).
"""

from opusclip_lib.errors import VideoNotFoundError
from opusclip_lib.workflow.batch import (
    BatchReport,
    DroppingRecorder,
    StageProgress,
    critical_path_bound,
    drain,
    run_batch,
    run_video,
)
from opusclip_lib.workflow.clients import ProviderClients
from opusclip_lib.workflow.config import KIND, NAIVE, OPTIMISED, Mode, WorkflowConfig
from opusclip_lib.workflow.endpoints import (
    Endpoint,
    Endpoints,
    endpoints_at,
    endpoints_from_env,
)
from opusclip_lib.workflow.engine import Engine, JobUpdate, OnChange, job_update, worker_name
from opusclip_lib.workflow.errors import (
    DownloadFailedError,
    Failure,
    MediaUnreadableError,
    NoAudioError,
    NoHighlightsError,
    NotMediaError,
    SourceError,
    SourceNotFoundError,
    SourceTooLargeError,
    SourceTooLongError,
    TranscriptionRejectedError,
    UnsupportedSourceError,
    WorkflowError,
    classify,
)
from opusclip_lib.workflow.files import ClipFiles, VideoFiles, clean_partials
from opusclip_lib.workflow.services import UNLIMITED, ApiLimits, Services, open_services
from opusclip_lib.workflow.sources import Source, register, resolve
from opusclip_lib.workflow.stages import STAGE_NAMES, STAGES, Stage, VideoRun, plan
from opusclip_lib.workflow.timeline import status_timeline
from opusclip_lib.workflow.transcription import Transcriber, stitch

__all__ = [
    "KIND", "NAIVE", "OPTIMISED", "STAGES", "STAGE_NAMES", "UNLIMITED", "ApiLimits",
    "BatchReport", "ClipFiles", "DownloadFailedError", "DroppingRecorder", "Endpoint",
    "Endpoints", "Engine", "Failure", "JobUpdate", "MediaUnreadableError", "Mode",
    "NoAudioError", "NoHighlightsError", "NotMediaError", "OnChange", "ProviderClients",
    "Services", "Source", "SourceError", "SourceNotFoundError", "SourceTooLargeError",
    "SourceTooLongError", "Stage", "StageProgress", "Transcriber", "TranscriptionRejectedError",
    "UnsupportedSourceError", "VideoFiles", "VideoNotFoundError", "VideoRun", "WorkflowConfig",
    "WorkflowError", "classify", "clean_partials", "critical_path_bound", "drain",
    "endpoints_at", "endpoints_from_env", "job_update", "open_services", "plan", "register",
    "resolve", "run_batch", "run_video", "status_timeline", "stitch", "worker_name",
]
