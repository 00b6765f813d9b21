"""``opusclip clip SOURCE``: one video in, captioned 9:16 clips and everything about them out.

::

    opusclip clip talk.mp4                                    # offline, against the sandbox
    opusclip clip https://example.com/talk.mp4 --clips 5 --out clips/talk
    OPENAI_API_KEY=... STABILITY_API_KEY=... ELEVENLABS_API_KEY=... YOUTUBE_API_KEY=... \\
        opusclip clip https://www.youtube.com/watch?v=ID --target live

SOURCE is a local media file, a direct http(s) media URL, or any page yt-dlp supports. The
video goes through the durable workflow (:mod:`opusclip_lib.workflow`), rows in the database
(``OPUSCLIP_DATABASE_URL``, default SQLite under ``work/``), then OUT receives per clip the
9:16 render with burned captions, its captions as ``.srt`` and ``.vtt``, the thumbnail, the
voice-over (alone and muxed), and ``manifest.json`` with the SHA-256 of every file.

Ctrl-C stops cleanly (no half-written file anywhere; the job goes back to ``pending``); run the
same command again and it resumes. A finished video is not processed again: a second run
makes no API call and rewrites no file. The last line of stdout is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from opusclip_lib import config as settings
from opusclip_lib.db import Database, Video, clips, connect, videos
from opusclip_lib.media import Transcript, atomic_output, build_captions
from opusclip_lib.media.captions import srt_document, vtt_document
from opusclip_lib.targets import TARGET_HELP, endpoints_for
from opusclip_lib.workflow import (
    DroppingRecorder,
    JobUpdate,
    Services,
    VideoFiles,
    WorkflowConfig,
    open_services,
    register,
    resolve,
    run_video,
)
from opusclip_lib.workflow.stages import plan
from opusclip_lib.workflow.transcription import sha256_file

MANIFEST = "manifest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="opusclip clip", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a media file, a media URL, or a web page yt-dlp knows")
    parser.add_argument("--clips", type=int, default=3, help="highlights to cut (default 3)")
    parser.add_argument("--out", type=Path, help="output folder (default clips/<video key>)")
    parser.add_argument("--voiceover", action=argparse.BooleanOptionalAction, default=True,
                        help="an ElevenLabs voice-over of each clip's hook")
    parser.add_argument("--target", default="sandbox", help=TARGET_HELP)
    parser.add_argument("--database-url", help="default: OPUSCLIP_DATABASE_URL or SQLite")
    parser.add_argument("--work-dir", type=Path, help="artifacts (default work/workflow)")
    parser.add_argument("--max-clip-seconds", dest="max_clip_s", type=float,
                        help="trim each clip to this length")
    parser.add_argument("--max-duration", type=float, default=4 * 3600.0,
                        help="refuse a longer video (seconds)")
    parser.add_argument("--download-timeout", type=float, default=30.0,
                        help="seconds a silent server is waited for")
    parser.add_argument("--chunk-mb", type=float, default=24.0,
                        help="largest audio upload to the transcription endpoint (MB)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> WorkflowConfig:
    say = (lambda stage, message: None) if args.quiet else _say
    options = {"work_dir": args.work_dir} if args.work_dir else {}
    return WorkflowConfig(clips=args.clips, voiceover=args.voiceover,
                          max_clip_s=args.max_clip_s,
                          max_duration_s=args.max_duration,
                          download_timeout_s=args.download_timeout,
                          transcribe_chunk_bytes=int(args.chunk_mb * 1024 * 1024),
                          progress=say, **options)


def _say(stage: str, message: str) -> None:
    print(f"[{stage}] {message}", file=sys.stderr, flush=True)


async def _announce(update: JobUpdate) -> None:
    if update["status"] == "failed":
        _say(update["stage"] or "start", f"failed: {update['error_message']}")
    elif update["status"] == "completed":
        _say("done", "every stage finished")
    elif update["stage"]:
        _say(update["stage"], f"{update['progress']:.0%} of the stages done")


def write_if_changed(dest: Path, data: bytes) -> bool:
    """Write ``data`` atomically unless ``dest`` already holds exactly it; whether it wrote."""
    if dest.exists() and dest.read_bytes() == data:
        return False
    with atomic_output(dest) as temp:
        temp.write_bytes(data)
    return True


def copy_if_changed(source: Path, dest: Path) -> bool:
    """Copy atomically unless ``dest`` already has the same content; whether it copied."""
    if dest.exists() and sha256_file(dest) == sha256_file(source):
        return False
    with atomic_output(dest) as temp:
        shutil.copyfile(source, temp)
    return True


async def export(db: Database, video: Video, config: WorkflowConfig, out: Path, *,
                 source: str, target: str) -> tuple[dict[str, Any], list[str]]:
    """Copy the finished clips' files into ``out`` with captions and a manifest; returns the
    manifest and the files this call wrote (none when ``out`` is already up to date)."""
    files = VideoFiles.of(config.work_dir, video.youtube_id)
    transcript = Transcript.model_validate_json(files.transcript.read_bytes())
    written: list[str] = []
    entries = []
    for clip in await clips.list_clips(db, video.id):
        stem = f"clip{clip.ranking:02d}"
        own = files.clip(clip.id)
        captions = build_captions(transcript.words_between(clip.start_s, clip.end_s),
                                  clip_start=clip.start_s, clip_end=clip.end_s)
        outputs: dict[str, Path] = {}
        for kind, artifact, suffix in (("video", own.video, ".mp4"),
                                       ("thumbnail", own.thumbnail, ".png"),
                                       ("voiceover", own.voice, ".voiceover.wav"),
                                       ("voiced_video", own.voiced, ".voiced.mp4")):
            if artifact.exists():
                outputs[kind] = out / f"{stem}{suffix}"
                if copy_if_changed(artifact, outputs[kind]):
                    written.append(outputs[kind].name)
        for kind, text in (("srt", srt_document(captions)), ("vtt", vtt_document(captions))):
            outputs[kind] = out / f"{stem}.{kind}"
            if write_if_changed(outputs[kind], text.encode()):
                written.append(outputs[kind].name)
        entries.append({"rank": clip.ranking, "start_s": clip.start_s, "end_s": clip.end_s,
                        "score": clip.virality_score, "title": clip.title, "hook": clip.hook,
                        "files": {kind: {"path": path.name, "sha256": sha256_file(path)}
                                  for kind, path in outputs.items()}})
    manifest = {"source": source, "video": {"key": video.youtube_id, "title": video.title,
                                            "duration_s": video.duration_s},
                "target": target, "clips": entries}
    if write_if_changed(out / MANIFEST, json.dumps(manifest, indent=1).encode()):
        written.append(MANIFEST)
    return manifest, written


def _calls(services: Services) -> dict[str, int]:
    return {name: usage.calls for name, usage in services.usage().items()}


def _spent(services: Services) -> dict[str, dict[str, float]]:
    """Each provider's units this run (tokens, audio seconds, credits, characters, quota)."""
    return {name: dict(usage.spent) for name, usage in services.usage().items() if usage.spent}


async def clip(args: argparse.Namespace) -> dict[str, Any]:
    """Run the workflow on ``args.source`` and export its clips; the JSON summary."""
    config = config_from(args)
    endpoints = endpoints_for(args.target)
    source = await resolve(args.source)
    url = args.database_url or settings.database_url()
    async with connect(url, recorder=DroppingRecorder()) as db, \
            open_services(endpoints) as services:
        video = await register(db, source)
        if not args.quiet:
            _say("source", f"{source.source or video.url} -> video {video.youtube_id}; stages: "
                           f"{', '.join(stage.name for stage in plan(config))}")
        job = await run_video(db, services, video.youtube_id, config,
                              on_change=None if args.quiet else _announce)
        summary: dict[str, Any] = {"status": job.status, "video": video.youtube_id,
                                   "api_calls": _calls(services), "api_spent": _spent(services)}
        if job.status != "completed":
            return summary | {"stage": job.stage, "error_code": job.error_code,
                              "error": job.error_message}
        video = await videos.get_video(db, video.id)
        out = args.out or Path("clips") / video.youtube_id
        manifest, written = await export(db, video, config, out,
                                         source=source.source or video.url, target=endpoints.name)
        return summary | {"out": str(out), "clips": len(manifest["clips"]), "written": written}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = asyncio.run(clip(args))
    except KeyboardInterrupt:
        print("stopped: nothing half-written is left; run the same command again to resume",
              file=sys.stderr)
        return 130
    print(json.dumps(summary))
    if summary["status"] != "completed":
        print(f"failed in {summary.get('stage')}: {summary.get('error')}", file=sys.stderr)
        return 1
    return 0

