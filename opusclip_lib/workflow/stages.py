"""The workflow's stages, one function each, every one idempotent.

A stage does its costly work (an API call, an ffmpeg run) only when the result is missing, and
returns the row changes to commit; the engine commits them together with the job's move to the
next stage. "Done" takes both witnesses: the row says so *and* the artifact is on disk.

* row and file: skip, nothing to do;
* file, no row (killed between the rename and the commit): adopt the file, no second paid call;
* row, no file (deleted since): do the work again.

=============  ===========  =====================================  ===========================
stage          job status   work                                   row marker
=============  ===========  =====================================  ===========================
metadata       downloading  YouTube ``videos.list``                videos.status ``described``
download       downloading  link the media (offline stand-in)      ``downloaded``
transcribe     transcribing the transcript (sample or stand-in)    ``transcribed``
analyze        analyzing    OpenAI highlights -> clip rows         ``analyzed``
render         rendering    ffmpeg 9:16 per clip (if rendering)    clips.clip_path
thumbnail      rendering    Stability image per clip               clips.thumbnail_path
voiceover      rendering    ElevenLabs speech (+ mux) per clip     clips.voiceover_path
=============  ===========  =====================================  ===========================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from opusclip_lib.api.models.openai import Highlight
from opusclip_lib.api.models.youtube import Video as YouTubeVideo
from opusclip_lib.db import Clip, Database, Executor, Video, clips, videos
from opusclip_lib.media import FFmpegError, Transcript, mux_voiceover, probe, render_clip
from opusclip_lib.pipelines import map_bounded, map_sequential
from opusclip_lib.workflow.config import WorkflowConfig
from opusclip_lib.workflow.errors import MediaUnreadable, NoHighlights, VideoNotFound
from opusclip_lib.workflow.files import (
    VideoFiles,
    link,
    read_json,
    write_bytes,
    write_json,
    write_wav,
)
from opusclip_lib.workflow.services import Services, live

Write = Callable[[Executor], Awaitable[None]]
ClipChange = dict[str, Any]

VIDEO_PROGRESS = ("queued", "described", "downloaded", "transcribed", "analyzed", "completed")
"""``videos.status`` in workflow order: a stage's marker is reached at or past its place."""

VOICE_FORMAT, VOICE_RATE = "pcm_22050", 22_050
"""Raw PCM needs no encoder on either side; :func:`write_wav` gives it a header ffmpeg reads."""


@dataclass(slots=True)
class VideoRun:
    """One video on its way through the stages: where to write, and how (naive or optimised)."""

    db: Database
    services: Services
    config: WorkflowConfig
    video: Video
    files: VideoFiles
    clips: list[Clip] = field(default_factory=list)
    loaded_transcript: Transcript | None = None

    def reached(self, status: str) -> bool:
        return (self.video.status in VIDEO_PROGRESS
                and VIDEO_PROGRESS.index(self.video.status) >= VIDEO_PROGRESS.index(status))

    def done(self, status: str, artifact: Path) -> bool:
        return self.reached(status) and artifact.exists()

    def transcript(self) -> Transcript:
        if self.loaded_transcript is None:
            self.loaded_transcript = Transcript.model_validate_json(
                self.files.transcript.read_bytes())
        return self.loaded_transcript

    def unit(self) -> AbstractAsyncContextManager[Executor]:
        """Optimised: one transaction per stage. Naive: every statement commits on its own (the
        stages' idempotency alone then makes a crash between two statements harmless)."""
        if self.config.mode.batched:
            return self.db.transaction()
        return nullcontext(self.db)

    async def set_video(self, ex: Executor, **changes: Any) -> None:
        self.video = await videos.update_video(ex, self.video.id, **changes)

    def video_write(self, **changes: Any) -> Write:
        return partial(_set_video, self, changes)

    async def save_clips(self, ex: Executor, rows: list[dict[str, Any]]) -> None:
        """Upsert by span: analysing again updates the same rows, never adds duplicates."""
        if self.config.mode.batched:
            await clips.upsert_clips(ex, rows)
        else:
            for row in rows:
                await clips.upsert_clips(ex, [row])
        self.clips = await clips.list_clips(ex, self.video.id)

    async def update_clips(self, ex: Executor, changes: list[ClipChange]) -> None:
        by_id = {change["id"]: {k: v for k, v in change.items() if k != "id"}
                 for change in changes}
        if self.config.mode.batched:
            await clips.update_clips(ex, changes)
        else:
            for clip_id, values in by_id.items():
                await clips.update_clip(ex, clip_id, **values)
        self.clips = [dataclasses.replace(clip, **by_id.get(clip.id, {})) for clip in self.clips]

    async def each_clip(self, work: Callable[[Clip], Awaitable[ClipChange | None]],
                        ) -> list[ClipChange]:
        """``work`` on every clip, all at once (optimised) or one after another (naive)."""
        if self.config.mode.parallel:
            results = await map_bounded(work, self.clips, limit=max(len(self.clips), 1))
        else:
            results = await map_sequential(work, self.clips)
        return [change for change in results if change is not None]


async def _set_video(run: VideoRun, changes: Mapping[str, Any], ex: Executor) -> None:
    await run.set_video(ex, **changes)


def clip_done(recorded: str | None, artifact: Path) -> bool:
    return recorded == str(artifact) and artifact.exists()


async def ensure_json(path: Path, produce: Callable[[], Awaitable[Any]]) -> Any:
    """The artifact's content, producing and saving it first if it is not on disk yet."""
    if path.exists():
        return read_json(path)
    value = await produce()
    write_json(path, value)
    return value


# --- video stages ----------------------------------------------------------------------------

def metadata_columns(item: Mapping[str, Any]) -> dict[str, Any]:
    """``videos`` columns from a YouTube ``videos.list`` item (as stored in metadata.json)."""
    found = YouTubeVideo.model_validate(item)
    snippet, details = found.snippet, found.content_details
    return {
        "title": snippet.title if snippet else None,
        "channel": snippet.channel_title if snippet else None,
        "duration_s": details.duration.total_seconds() if details else None,
        "metadata": {"description": snippet.description if snippet else "",
                     "tags": snippet.tags if snippet else [],
                     "channel_id": snippet.channel_id if snippet else None,
                     "published_at": item.get("snippet", {}).get("publishedAt"),
                     "statistics": item.get("statistics") or {}},
    }


async def fetch_metadata(run: VideoRun) -> Write | None:
    if run.done("described", run.files.metadata):
        return None

    async def ask_youtube() -> dict[str, Any]:
        found = live(await run.services.youtube.videos([run.video.youtube_id]))
        if not found:
            raise VideoNotFound(f"YouTube has no video {run.video.youtube_id!r} "
                                "(deleted, private, or never existed)")
        return found[0].model_dump(mode="json", by_alias=True)

    item = await ensure_json(run.files.metadata, ask_youtube)
    return run.video_write(status="described", **metadata_columns(item))


async def download(run: VideoRun) -> Write | None:
    if run.done("downloaded", run.files.source):
        return None
    if not run.files.source.exists():
        media = run.config.source(run.video.youtube_id)
        if not media.is_file():
            raise MediaUnreadable(f"no media file at {media}")
        link(media, run.files.source)
    return run.video_write(status="downloaded")


async def transcribe(run: VideoRun) -> Write | None:
    if run.done("transcribed", run.files.transcript):
        return None
    if not run.files.transcript.exists():
        run.loaded_transcript = run.config.transcriber(run.video)
        write_bytes(run.files.transcript, run.loaded_transcript.model_dump_json().encode())
    return run.video_write(status="transcribed")


def clip_rows(video_id: int, picks: Iterable[Highlight], transcript: Transcript,
              config: WorkflowConfig) -> list[dict[str, Any]]:
    """Usable clips from the LLM's picks, best first: inside the transcript, trimmed to
    ``max_clip_seconds``, at least ``min_clip_seconds`` long, each span once."""
    rows: list[dict[str, Any]] = []
    spans: set[tuple[float, float]] = set()
    for pick in sorted(picks, key=lambda h: h.virality_score, reverse=True):
        start = round(pick.start, 3)
        end = min(pick.end, transcript.duration)
        if config.max_clip_seconds is not None:
            end = min(end, start + config.max_clip_seconds)
        end = round(end, 3)
        if end - start < config.min_clip_seconds or (start, end) in spans:
            continue
        spans.add((start, end))
        rows.append({"video_id": video_id, "ranking": len(rows) + 1, "start_s": start,
                     "end_s": end, "title": pick.title[:500], "hook": pick.hook[:1000],
                     "virality_score": pick.virality_score,
                     "transcript": transcript.text_between(start, end), "status": "pending"})
    return rows


async def analyze(run: VideoRun) -> Write | None:
    if run.done("analyzed", run.files.highlights):
        run.clips = await clips.list_clips(run.db, run.video.id)
        return None
    transcript = run.transcript()

    async def ask_openai() -> list[dict[str, Any]]:
        if not transcript.segments:
            raise NoHighlights("the transcript has no speech to pick highlights from")
        picks = live(await run.services.openai.pick_highlights(list(transcript.segments),
                                                               run.config.clips))
        return [pick.model_dump() for pick in picks]

    picks = [Highlight.model_validate(pick)
             for pick in await ensure_json(run.files.highlights, ask_openai)]
    rows = clip_rows(run.video.id, picks, transcript, run.config)
    if not rows:
        raise NoHighlights(f"none of the {len(picks)} highlight(s) is a usable clip (at least "
                           f"{run.config.min_clip_seconds:g} s inside the "
                           f"{transcript.duration:g} s transcript)")

    async def write(ex: Executor) -> None:
        await run.save_clips(ex, rows)
        await run.set_video(ex, status="analyzed")

    return write


# --- clip stages -----------------------------------------------------------------------------

async def _commit_changes(run: VideoRun,
                          work: Callable[[Clip], Awaitable[ClipChange | None]]) -> Write | None:
    changes = await run.each_clip(work)
    if not changes:
        return None
    return partial(VideoRun.update_clips, run, changes=changes)


async def _readable(source: Path) -> None:
    try:
        await probe(source)
    except FFmpegError as exc:
        detail = exc.stderr_tail.strip().splitlines()[-1:] or ["no details"]
        raise MediaUnreadable(f"{source.resolve()} is not readable media: {detail[0]}") from exc


async def _render_clip(run: VideoRun, clip: Clip) -> ClipChange | None:
    dest = run.files.clip(clip.id).video
    if clip_done(clip.clip_path, dest):
        return None
    if not dest.exists():
        await render_clip(run.files.source, dest, clip.start_s, clip.end_s,
                          transcript=run.transcript() if run.config.captions else None)
    return {"id": clip.id, "clip_path": str(dest), "status": "rendered"}


async def render(run: VideoRun) -> Write | None:
    if any(not clip_done(c.clip_path, run.files.clip(c.id).video) for c in run.clips):
        await _readable(run.files.source)
    return await _commit_changes(run, partial(_render_clip, run))


def thumbnail_prompt(clip: Clip) -> str:
    return (f"Eye-catching vertical thumbnail for a short video titled \"{clip.title}\": "
            "bold composition, bright colours, no text")


async def _thumbnail(run: VideoRun, clip: Clip) -> ClipChange | None:
    dest = run.files.clip(clip.id).thumbnail
    if clip_done(clip.thumbnail_path, dest):
        return None
    if not dest.exists():
        image = live(await run.services.stability.generate_core(
            thumbnail_prompt(clip), aspect_ratio="9:16", output_format="png"))
        write_bytes(dest, image.image)
    return {"id": clip.id, "thumbnail_path": str(dest), "status": "thumbnailed"}


async def thumbnail(run: VideoRun) -> Write | None:
    return await _commit_changes(run, partial(_thumbnail, run))


async def _voiceover(run: VideoRun, clip: Clip) -> ClipChange | None:
    files = run.files.clip(clip.id)
    final = files.voiced if run.config.render else files.voice
    if clip_done(clip.voiceover_path, final):
        return None
    if not files.voice.exists():
        speech = live(await run.services.elevenlabs.text_to_speech(
            clip.hook or clip.title or "", run.config.voice_id, output_format=VOICE_FORMAT))
        write_wav(files.voice, speech.audio, VOICE_RATE)
    if final != files.voice and not final.exists():
        await mux_voiceover(files.video, files.voice, final)
    return {"id": clip.id, "voiceover_path": str(final), "status": "completed"}


async def voiceover(run: VideoRun) -> Write | None:
    return await _commit_changes(run, partial(_voiceover, run))


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    status: str
    """The job's status while this stage runs (the job table's state machine)."""
    run: Callable[[VideoRun], Awaitable[Write | None]]


STAGES = (
    Stage("metadata", "downloading", fetch_metadata),
    Stage("download", "downloading", download),
    Stage("transcribe", "transcribing", transcribe),
    Stage("analyze", "analyzing", analyze),
    Stage("render", "rendering", render),
    Stage("thumbnail", "rendering", thumbnail),
    Stage("voiceover", "rendering", voiceover),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def plan(config: WorkflowConfig) -> tuple[Stage, ...]:
    """The stages a video goes through under ``config``: all of them, but ``render`` only when
    rendering (without it the voice-over is the speech alone, not muxed into a clip)."""
    return tuple(stage for stage in STAGES if config.render or stage.name != "render")
