"""The workflow's stages, one function each, every one idempotent.

A stage does its costly work (an API call, an ffmpeg run) only when the result is missing, and
returns the row changes to commit; the engine commits them together with the job's move to the
next stage. "Done" takes both witnesses: the row says so *and* the artifact is in the artifact
store (:mod:`~opusclip_lib.workflow.artifacts`; by default the work folder itself).

* row and file: skip, nothing to do (a file only in the store is fetched when a later stage
  reads it: the job may have moved to a worker with another work folder);
* file, no row (killed between the rename and the commit): adopt the file, no second paid call;
* row, no file (deleted since): do the work again.

Every artifact a stage makes is put into the store before the stage returns its rows, so a
committed stage never names a file that lives on one worker's disk only; rows record the
store's URL. Each paid API call's exchanges are logged in ``api_calls``, keyed by the artifact
they pay for, and each clip render notes its ffmpeg run (start and end) in the job's
events: what an operator, or the chaos test, counts effects by.

=============  ===========  =====================================  ===========================
stage          job status   work                                   row marker
=============  ===========  =====================================  ===========================
metadata       downloading  YouTube ``videos.list``, the page's   videos.status ``described``
                            info (yt-dlp) or the file's probe
download       downloading  yt-dlp, or link the local file         ``downloaded``
transcribe     transcribing audio -> chunks -> OpenAI transcription ``transcribed``
analyze        analyzing    OpenAI highlights -> clip rows         ``analyzed``
render         rendering    ffmpeg 9:16 per clip (if rendering)    clips.clip_path
thumbnail      rendering    Stability image per clip               clips.thumbnail_path
voiceover      rendering    ElevenLabs speech (+ mux) per clip     clips.voiceover_path
=============  ===========  =====================================  ===========================

In the optimised mode the thumbnail and voice-over stages ask for their files early
(:attr:`Stage.early`), beside the render: the render keeps the CPU busy while the image and
speech requests wait on the network, and the stages then only record what is already on disk.
Without a render the stages run in turn, as the critical-path bound of notebook 31 assumes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from opusclip_lib.api.models.openai import Highlight
from opusclip_lib.api.models.youtube import Video as YouTubeVideo
from opusclip_lib.db import Clip, Database, Executor, Video, clips, videos
from opusclip_lib.db.progress import record_progress
from opusclip_lib.db.videos import WATCH_URL
from opusclip_lib.errors import VideoNotFoundError
from opusclip_lib.media import (
    FFmpegError,
    MediaInfo,
    Transcript,
    atomic_output,
    mux_voiceover,
    probe,
    render_clip,
)
from opusclip_lib.media.audio import AUDIO_SUFFIX, extract_audio
from opusclip_lib.pipelines import map_bounded, map_sequential
from opusclip_lib.resilience.singleflight import SingleFlight
from opusclip_lib.workflow import download as fetching
from opusclip_lib.workflow.artifacts import DirectoryStore, Mirror
from opusclip_lib.workflow.config import WorkflowConfig
from opusclip_lib.workflow.errors import (
    MediaUnreadableError,
    NoAudioError,
    NoHighlightsError,
    NotMediaError,
    SourceError,
    SourceNotFoundError,
    SourceTooLargeError,
    SourceTooLongError,
)
from opusclip_lib.workflow.files import (
    VideoFiles,
    link,
    read_json,
    write_bytes,
    write_json,
    write_wav,
)
from opusclip_lib.workflow.paid import paid
from opusclip_lib.workflow.services import Services, live
from opusclip_lib.workflow.transcription import Transcriber, sha256_file

Write = Callable[[Executor], Awaitable[None]]
ClipChange = dict[str, Any]

VIDEO_PROGRESS = ("queued", "described", "downloaded", "transcribed", "analyzed", "completed")
"""``videos.status`` in workflow order: a stage's marker is reached at or past its place."""

VOICE_FORMAT, VOICE_RATE = "pcm_22050", 22_050
"""Raw PCM needs no encoder on either side; :func:`write_wav` gives it a header ffmpeg reads."""


T = TypeVar("T")

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
    job_id: int | None = None
    worker: str | None = None

    @property
    def kind(self) -> str:
        """``youtube`` (a YouTube id), ``url`` (a web page or media URL) or ``file``."""
        source = self.video.source
        if source is None:
            return "youtube"
        return "url" if source.startswith(("http://", "https://")) else "file"

    @property
    def label(self) -> str:
        """The source as the user gave it, for error messages."""
        return self.video.source or WATCH_URL + self.video.youtube_id

    async def note(self, stage: str, status: str, message: str) -> None:
        """A long stage's progress: to ``config.progress`` and into the job's events."""
        if self.config.progress is not None:
            self.config.progress(stage, message)
        if self.job_id is not None:
            await record_progress(self.db, self.job_id, status, f"{stage}: {message}",
                                  worker=self.worker)

    def reached(self, status: str) -> bool:
        return (self.video.status in VIDEO_PROGRESS
                and VIDEO_PROGRESS.index(self.video.status) >= VIDEO_PROGRESS.index(status))

    @property
    def artifacts(self) -> Mirror:
        """The work folder and the store its artifacts are published into."""
        store = self.config.artifacts or DirectoryStore(self.config.work_dir)
        return Mirror(self.config.work_dir, store)

    async def done(self, status: str, artifact: Path) -> bool:
        """The row reached ``status`` and ``artifact`` is here (fetched from the store if it
        was made on another worker)."""
        return self.reached(status) and await self.artifacts.fetched(artifact)

    async def clip_done(self, recorded: str | None, artifact: Path) -> bool:
        """The clip's row records ``artifact``'s URL in the store, and the store has it."""
        artifacts = self.artifacts
        return recorded == artifacts.url(artifact) and await artifacts.stored(artifact)

    async def paid(self, artifact: Path, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, a paid API call made for ``artifact``, logged in ``api_calls`` by the
        artifact's store key (:mod:`opusclip_lib.workflow.paid`)."""
        return await paid(self.db, self.artifacts.key(artifact), call)

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

    async def each_clip(self, work: Callable[[Clip], Awaitable[T | None]]) -> list[T]:
        """``work`` on every clip, all at once (optimised) or one after another (naive)."""
        if self.config.mode.parallel:
            results = await map_bounded(work, self.clips, limit=max(len(self.clips), 1))
        else:
            results = await map_sequential(work, self.clips)
        return [change for change in results if change is not None]


async def _set_video(run: VideoRun, changes: Mapping[str, Any], ex: Executor) -> None:
    await run.set_video(ex, **changes)


async def ensure_json(run: VideoRun, path: Path, produce: Callable[[], Awaitable[Any]]) -> Any:
    """The artifact's content, producing and saving it first if neither this worker nor the
    store has it yet; in the store either way."""
    if await run.artifacts.fetched(path):
        value = read_json(path)
    else:
        value = await produce()
        write_json(path, value)
    await run.artifacts.publish(path)
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


async def checked_media(run: VideoRun, path: Path, *, stage: str) -> MediaInfo:
    """``path`` probed: media, with an audio track, within the length limit; else a typed
    error naming the source and ``stage``."""
    if not path.exists():  # noqa: ASYNC240 - a stat, not worth a thread
        raise SourceNotFoundError(run.label, "no such file", stage=stage)
    if path.is_file() and path.stat().st_size == 0:  # noqa: ASYNC240 - a stat, not worth a thread
        raise NotMediaError(run.label, "the file is empty", stage=stage)
    try:
        info = await probe(path)
    except FFmpegError as exc:
        detail = exc.stderr_tail.strip().splitlines()[-1:] or ["no details"]
        raise NotMediaError(run.label, f"not readable media ({detail[0]})", stage=stage) from exc
    if info.is_text:
        raise NotMediaError(run.label, "a text file, not media", stage=stage)
    if info.duration_s is None or info.duration_s <= 0:
        raise NotMediaError(run.label, "the media has no duration (empty or corrupt)", stage=stage)
    if info.width is None:
        raise NotMediaError(run.label, "no video track: clips need a picture", stage=stage)
    if not info.has_audio:
        raise NoAudioError(run.label, "the video has no audio track, so nothing to transcribe",
                      stage=stage)
    _within_limits(run, info.duration_s, path.stat().st_size, stage=stage)  # noqa: ASYNC240 - a stat, not worth a thread
    return info


def _within_limits(run: VideoRun, duration_s: float | None, size: int | None, *,
                   stage: str) -> None:
    limit_s, limit_bytes = run.config.max_duration_s, run.config.max_download_bytes
    if duration_s is not None and limit_s is not None and duration_s > limit_s:
        raise SourceTooLongError(run.label, f"the video lasts {duration_s:,.0f} s; the limit is "
                                       f"{limit_s:,.0f} s", stage=stage)
    if size is not None and limit_bytes is not None and size > limit_bytes:
        raise SourceTooLargeError(run.label, f"the media is {size:,} bytes; the limit is "
                                        f"{limit_bytes:,}", stage=stage)


async def _describe_source(run: VideoRun) -> dict[str, Any]:
    """metadata.json of a file (its probe) or a web page (what yt-dlp reads from it)."""
    if run.kind == "file":
        path = Path(run.video.source or "")
        info = await checked_media(run, path, stage="metadata")
        return {"title": path.stem, "duration": info.duration_s, "uploader": None,
                "filesize": path.stat().st_size, "source": run.label}  # noqa: ASYNC240 - a stat, not worth a thread
    page = await fetching.page_info(run.label, timeout_s=run.config.download_timeout_s,
                                    stage="metadata")
    size = page.get("filesize") or page.get("filesize_approx")
    _within_limits(run, page.get("duration"), size, stage="metadata")
    return {"title": page.get("title"), "duration": page.get("duration"),
            "uploader": page.get("uploader"), "filesize": size, "source": run.label,
            "webpage_url": page.get("webpage_url"), "extractor": page.get("extractor_key")}


def source_columns(item: Mapping[str, Any]) -> dict[str, Any]:
    """``videos`` columns from a file's or a page's metadata.json."""
    return {"title": (item.get("title") or "")[:500] or None,
            "channel": (item.get("uploader") or "")[:200] or None,
            "duration_s": item.get("duration"),
            "metadata": {key: item.get(key) for key in ("uploader", "extractor", "webpage_url",
                                                         "filesize")}}


async def fetch_metadata(run: VideoRun) -> Write | None:
    if await run.done("described", run.files.metadata):
        return None
    if run.kind != "youtube":
        item = await ensure_json(run, run.files.metadata, partial(_describe_source, run))
        return run.video_write(status="described", **source_columns(item))

    async def ask_youtube() -> dict[str, Any]:
        found = live(await run.paid(run.files.metadata,
                                    partial(run.services.youtube.videos, [run.video.youtube_id])))
        if not found:
            raise VideoNotFoundError(f"YouTube has no video {run.video.youtube_id!r} "
                                "(deleted, private, or never existed)")
        return found[0].model_dump(mode="json", by_alias=True)

    item = await ensure_json(run, run.files.metadata, ask_youtube)
    return run.video_write(status="described", **metadata_columns(item))


async def _fetch(run: VideoRun, url: str) -> None:
    """yt-dlp into ``download/`` (resuming), then one atomic rename to ``source.mp4``."""
    reported = [-1]

    async def progress(update: fetching.DownloadProgress) -> None:
        fraction = update.fraction
        step = int(fraction * 10) if fraction is not None else -1
        if step > reported[0]:
            reported[0] = step
            total = f" of {update.total_bytes / 1e6:.1f} MB" if update.total_bytes else ""
            await run.note("download", "downloading",
                           f"{(fraction or 0):.0%} ({update.downloaded_bytes / 1e6:.1f} MB"
                           f"{total})")

    try:
        path = await fetching.download(url, run.files.downloads,
                                       timeout_s=run.config.download_timeout_s,
                                       max_bytes=run.config.max_download_bytes, stage="download",
                                       on_progress=progress)
    except SourceError:  # refused or failed: nothing to resume (a cancelled one keeps .part)
        shutil.rmtree(run.files.downloads, ignore_errors=True)
        raise
    os.replace(path, run.files.source)
    shutil.rmtree(run.files.downloads, ignore_errors=True)


async def download(run: VideoRun) -> Write | None:
    """The source stays on the worker that needs it (fetched again elsewhere, for free)."""
    if run.reached("downloaded") and run.files.source.exists():
        return None
    if not run.files.source.exists():
        if run.kind == "file":
            local = Path(run.video.source or "")
            if not local.is_file():  # noqa: ASYNC240 - a stat, not worth a thread
                raise SourceNotFoundError(run.label, "no such file", stage="download")
            link(local, run.files.source)
        elif run.kind == "url":
            await _fetch(run, run.label)
        elif run.services.youtube_media is not None:
            media = run.services.youtube_media(run.video.youtube_id)
            if not media.is_file():
                raise MediaUnreadableError(f"no media file at {media}")
            link(media, run.files.source)
        else:
            await _fetch(run, run.label)
    info = await checked_media(run, run.files.source, stage="download")
    if run.kind == "youtube":  # YouTube's own duration stays, whatever the media stand-in
        return run.video_write(status="downloaded")
    return run.video_write(status="downloaded", duration_s=info.duration_s)


_shared_work = SingleFlight()
"""Videos with the same media (a file given twice, the sandbox's stand-in media) extract and
transcribe it once, even when they run side by side."""


async def speech_audio(run: VideoRun) -> Path:
    """The source's speech audio, extracted once per distinct media (keyed by its hash)."""
    source_sha = await asyncio.to_thread(sha256_file, run.files.source)
    audio = run.config.work_dir / "audio" / f"{source_sha}{AUDIO_SUFFIX}"

    async def extract() -> Path:
        if not audio.exists():  # a killed run's leftover is in the video's folder: cleaned
            with atomic_output(audio, temp_dir=run.files.folder) as temp:
                await extract_audio(run.files.source, temp, duration_s=run.video.duration_s)
        return audio

    return await _shared_work.do(f"audio {audio}", extract)


async def transcribe(run: VideoRun) -> Write | None:
    if await run.done("transcribed", run.files.transcript):
        return None
    if not await run.artifacts.fetched(run.files.transcript):
        audio = await speech_audio(run)
        transcriber = Transcriber(run.services.openai, run.config.work_dir / "transcripts",
                                  max_chunk_bytes=run.config.transcribe_chunk_bytes,
                                  concurrency=run.config.transcribe_concurrency,
                                  language=run.config.language, artifacts=run.artifacts,
                                  paid=run.paid)
        scratch = run.files.folder / "chunks"
        heard = await _shared_work.do(
            f"transcript {audio}", partial(transcriber.transcript, audio, scratch,
                                           source=run.label))
        shutil.rmtree(scratch, ignore_errors=True)
        run.loaded_transcript = heard.model_copy(update={
            "video_id": run.video.youtube_id, "title": run.video.title or run.video.youtube_id})
        write_bytes(run.files.transcript, run.loaded_transcript.model_dump_json().encode())
    await run.artifacts.publish(run.files.transcript)
    return run.video_write(status="transcribed")


def clip_rows(video_id: int, picks: Iterable[Highlight], transcript: Transcript,
              config: WorkflowConfig) -> list[dict[str, Any]]:
    """Usable clips from the LLM's picks, best first: inside the transcript, trimmed to
    ``max_clip_s``, at least ``min_clip_s`` long, each span once."""
    rows: list[dict[str, Any]] = []
    spans: set[tuple[float, float]] = set()
    for pick in sorted(picks, key=lambda h: h.virality_score, reverse=True):
        start = round(pick.start, 3)
        end = min(pick.end, transcript.duration)
        if config.max_clip_s is not None:
            end = min(end, start + config.max_clip_s)
        end = round(end, 3)
        if end - start < config.min_clip_s or (start, end) in spans:
            continue
        spans.add((start, end))
        rows.append({"video_id": video_id, "ranking": len(rows) + 1, "start_s": start,
                     "end_s": end, "title": pick.title[:500], "hook": pick.hook[:1000],
                     "virality_score": pick.virality_score,
                     "transcript": transcript.text_between(start, end), "status": "pending"})
    return rows


async def analyze(run: VideoRun) -> Write | None:
    if await run.done("analyzed", run.files.highlights):
        run.clips = await clips.list_clips(run.db, run.video.id)
        return None
    transcript = run.transcript()

    async def ask_openai() -> list[dict[str, Any]]:
        if not transcript.segments:
            raise NoHighlightsError("the transcript has no speech to pick highlights from")
        picks = live(await run.paid(run.files.highlights,
                                    partial(run.services.openai.pick_highlights,
                                            list(transcript.segments), run.config.clips)))
        return [pick.model_dump() for pick in picks]

    picks = [Highlight.model_validate(pick)
             for pick in await ensure_json(run, run.files.highlights, ask_openai)]
    rows = clip_rows(run.video.id, picks, transcript, run.config)
    if not rows:
        raise NoHighlightsError(f"none of the {len(picks)} highlight(s) is a usable clip (at "
                                f"least {run.config.min_clip_s:g} s inside the "
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
        raise MediaUnreadableError(
            f"{source.resolve()} is not readable media: {detail[0]}") from exc  # noqa: ASYNC240 - a stat, not worth a thread


async def _render_clip(run: VideoRun, clip: Clip) -> ClipChange | None:
    dest = run.files.clip(clip.id).video
    if await run.clip_done(clip.clip_path, dest):
        return None
    if not await run.artifacts.fetched(dest):
        await run.note("render", "rendering", f"clip {clip.id}: ffmpeg started")
        started = time.perf_counter()
        await render_clip(run.files.source, dest, clip.start_s, clip.end_s,
                          transcript=run.transcript() if run.config.captions else None)
        await run.note("render", "rendering", f"clip {clip.id}: ffmpeg rendered in "
                                              f"{time.perf_counter() - started:.2f} s")
    return {"id": clip.id, "clip_path": await run.artifacts.publish(dest), "status": "rendered"}


async def render(run: VideoRun) -> Write | None:
    for clip in run.clips:
        if not await run.clip_done(clip.clip_path, run.files.clip(clip.id).video):
            await _readable(run.files.source)
            break
    return await _commit_changes(run, partial(_render_clip, run))


def thumbnail_prompt(clip: Clip) -> str:
    return (f"Eye-catching vertical thumbnail for a short video titled \"{clip.title}\": "
            "bold composition, bright colours, no text")


async def _thumbnail_file(run: VideoRun, clip: Clip) -> Path:
    """The clip's thumbnail in the store, asked from Stability once."""
    dest = run.files.clip(clip.id).thumbnail
    if await run.clip_done(clip.thumbnail_path, dest):
        return dest
    if not await run.artifacts.fetched(dest):
        image = live(await run.paid(dest, partial(
            run.services.stability.generate_core, thumbnail_prompt(clip), aspect_ratio="9:16",
            output_format="png")))
        write_bytes(dest, image.image)
    await run.artifacts.publish(dest)
    return dest


async def _thumbnail(run: VideoRun, clip: Clip) -> ClipChange | None:
    dest = run.files.clip(clip.id).thumbnail
    if await run.clip_done(clip.thumbnail_path, dest):
        return None
    await _thumbnail_file(run, clip)
    return {"id": clip.id, "thumbnail_path": run.artifacts.url(dest), "status": "thumbnailed"}


async def thumbnail(run: VideoRun) -> Write | None:
    return await _commit_changes(run, partial(_thumbnail, run))


async def thumbnail_files(run: VideoRun) -> None:
    await run.each_clip(partial(_thumbnail_file, run))


def _voiced(run: VideoRun, clip: Clip) -> Path:
    """The voice-over's final file: muxed into the clip, or the speech alone without a render."""
    files = run.files.clip(clip.id)
    return files.voiced if run.config.render else files.voice


async def _speech_file(run: VideoRun, clip: Clip) -> Path:
    """The clip's hook spoken, here and in the store, asked from ElevenLabs once."""
    voice = run.files.clip(clip.id).voice
    if await run.clip_done(clip.voiceover_path, _voiced(run, clip)):
        return voice
    if not await run.artifacts.fetched(voice):
        speech = live(await run.paid(voice, partial(
            run.services.elevenlabs.text_to_speech, clip.hook or clip.title or "",
            run.config.voice_id, output_format=VOICE_FORMAT)))
        write_wav(voice, speech.audio, VOICE_RATE)
    await run.artifacts.publish(voice)
    return voice


async def _voiceover(run: VideoRun, clip: Clip) -> ClipChange | None:
    final = _voiced(run, clip)
    if await run.clip_done(clip.voiceover_path, final):
        return None
    voice = await _speech_file(run, clip)
    if final != voice and not await run.artifacts.fetched(final):
        video = run.files.clip(clip.id).video
        if not await run.artifacts.fetched(video):
            raise MediaUnreadableError(f"clip {clip.id}'s render {run.artifacts.url(video)} is "
                                       "missing from the artifact store")
        await mux_voiceover(video, voice, final)
    return {"id": clip.id, "voiceover_path": await run.artifacts.publish(final),
            "status": "completed"}


async def voiceover(run: VideoRun) -> Write | None:
    return await _commit_changes(run, partial(_voiceover, run))


async def speech_files(run: VideoRun) -> None:
    await run.each_clip(partial(_speech_file, run))


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    status: str
    """The job's status while this stage runs (the job table's state machine)."""
    run: Callable[[VideoRun], Awaitable[Write | None]]
    cpu_bound: bool = False
    """Its work is local CPU (ffmpeg): the engine runs the later stages' ``early`` work beside
    it, where waiting on the network costs nothing."""
    early: Callable[[VideoRun], Awaitable[None]] | None = None
    """The stage's network work that needs only the clip rows (files asked from an API), which
    the engine starts beside a CPU-bound stage before it: ``run`` then finds the files and
    records them. It writes no rows, so the stage's commit stays the one place its progress is
    recorded."""


STAGES = (
    Stage("metadata", "downloading", fetch_metadata),
    Stage("download", "downloading", download),
    Stage("transcribe", "transcribing", transcribe),
    Stage("analyze", "analyzing", analyze),
    Stage("render", "rendering", render, cpu_bound=True),
    Stage("thumbnail", "rendering", thumbnail, early=thumbnail_files),
    Stage("voiceover", "rendering", voiceover, early=speech_files),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def plan(config: WorkflowConfig) -> tuple[Stage, ...]:
    """The stages a video goes through under ``config``: all of them, but ``render`` only when
    rendering (without it the voice-over is the speech alone, not muxed into a clip) and
    ``voiceover`` only when asked for."""
    skipped = {name for name, wanted in (("render", config.render),
                                         ("voiceover", config.voiceover)) if not wanted}
    return tuple(stage for stage in STAGES if stage.name not in skipped)
