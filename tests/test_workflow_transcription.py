"""Transcription on real audio: chunks cut at silences go out concurrently and come back stitched
on the source's clock; the endpoint's refusal is a typed failure; downloads report progress."""

from __future__ import annotations

import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from opusclip_lib.api.models.openai import Transcription
from opusclip_lib.db import connect, jobs
from opusclip_lib.media import atomic_output, load_transcript, sample_transcript, sample_video
from opusclip_lib.media.audio import Chunk, extract_audio, plan_chunks
from opusclip_lib.sandbox import SandboxConfig, build_app
from opusclip_lib.sandbox.endpoints import sandbox_endpoints
from opusclip_lib.workflow import (
    UNLIMITED,
    Transcriber,
    VideoFiles,
    WorkflowConfig,
    open_services,
    register,
    resolve,
    run_video,
    stitch,
)
from tests.test_clip_command import web_server

TINY = {"max_clip_s": 2.0, "clips": 1, "render": False, "voiceover": False,
        "heartbeat_s": 0.2, "poll_s": 0.05}


def normalised(text: str) -> str:
    return text.lower().strip(".,!?;:")


def test_chunks_end_in_the_middle_of_silences_and_stay_under_the_bound() -> None:
    quiet = [(9.0, 9.4), (14.0, 15.0), (27.0, 27.2)]
    chunks = plan_chunks(40.0, quiet, max_chunk_s=16.0)
    assert [(c.start, c.end) for c in chunks] == [(0.0, 14.5), (14.5, 27.1), (27.1, 40.0)]
    assert plan_chunks(40.0, [], max_chunk_s=16.0)[0].end == 16.0  # no silence: a hard cut


def test_stitching_offsets_each_chunk_and_restores_punctuation() -> None:
    def heard(words: list[tuple[str, float, float]], text: str) -> Transcription:
        return Transcription.model_validate({
            "language": "english", "duration": 5.0, "text": text,
            "words": [{"word": w, "start": a, "end": b} for w, a, b in words],
            "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 5.0, "text": text,
                          "tokens": [], "temperature": 0.0, "avg_logprob": 0.0,
                          "compression_ratio": 1.0, "no_speech_prob": 0.0}]})

    parts = [(Chunk(1, 10.0, 20.0), heard([("See", 0.5, 0.8), ("you", 0.9, 1.2)], "See you.")),
             (Chunk(0, 0.0, 10.0), heard([("Hi", 0.1, 0.3), ("there", 0.4, 0.7)],
                                         "Hi there."))]
    transcript = stitch(parts, video_id="v", title="t", duration_s=20.0)
    assert [s.text for s in transcript.segments] == ["Hi there.", "See you."]
    assert [(w.start, w.end) for w in transcript.segments[1].words] == [(10.5, 10.8),
                                                                         (10.9, 11.2)]


async def test_long_audio_goes_out_in_chunks_and_comes_back_on_the_source_clock(
        tmp_path: Path) -> None:
    audio = tmp_path / "talk.ogg"
    with atomic_output(audio) as temp:
        await extract_audio(sample_video(), temp)
    truth = load_transcript(sample_transcript())
    async with open_services(sandbox_endpoints(build_app(SandboxConfig.unlimited())),
                             limits=UNLIMITED) as services:
        transcriber = Transcriber(services.openai, tmp_path / "cache",
                                  max_chunk_bytes=audio.stat().st_size // 3, concurrency=4)
        heard = await transcriber.transcript(audio, tmp_path / "chunks", source="talk.mp4")
        uploads = services.usage()["openai"].calls
        again = await transcriber.transcript(audio, tmp_path / "chunks", source="talk.mp4")
        assert services.usage()["openai"].calls == uploads  # cached by the audio's hash
    assert uploads >= 3
    assert again == heard
    assert [normalised(w.text) for w in heard.words] == [
        normalised(w.text) for w in truth.words]
    assert max(abs(a.start - b.start) for a, b in zip(heard.words, truth.words,
                                                       strict=True)) < 0.1
    assert " ".join(s.text for s in heard.segments) == " ".join(s.text for s in truth.segments)
    assert all(s.text.endswith((".", "!", "?")) for s in heard.segments)  # one sentence each


def refusing(status: int):  # type: ignore[no-untyped-def]
    app = httpx.ASGITransport(build_app(SandboxConfig.unlimited()))

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/audio/transcriptions"):
            return httpx.Response(status, json={"error": {
                "message": "Maximum content size limit exceeded" if status == 413 else
                "Invalid file format.", "type": "invalid_request_error", "param": "file",
                "code": None}})
        return await app.handle_async_request(request)

    return httpx.MockTransport(answer)


@pytest.mark.parametrize("status", [400, 413])
async def test_a_refused_upload_fails_the_job_naming_source_and_stage(
        tmp_path: Path, status: int) -> None:
    config = WorkflowConfig(work_dir=tmp_path / "work", **TINY)
    endpoints = sandbox_endpoints(build_app(SandboxConfig.unlimited())).with_transports(
        {"openai": refusing(status)})
    async with connect(f"sqlite:///{tmp_path}/t.db") as db, \
            open_services(endpoints, limits=UNLIMITED) as services:
        source = await resolve(str(sample_video()))
        video = await register(db, source)
        job = await run_video(db, services, video.youtube_id, config)
    assert (job.status, job.stage, job.error_code) == ("failed", "transcribe",
                                                       "transcription_rejected")
    assert job.error_message.startswith(f"transcribe: {sample_video()}: ")
    assert f"HTTP {status}" in job.error_message


async def test_a_download_over_the_size_limit_stops_and_leaves_nothing(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "talk.mp4").write_bytes(sample_video().read_bytes())
    config = WorkflowConfig(work_dir=tmp_path / "work", max_download_bytes=100_000, **TINY)
    with web_server(site) as url:
        async with connect(f"sqlite:///{tmp_path}/t.db") as db, \
                open_services(sandbox_endpoints(build_app(SandboxConfig.unlimited())),
                              limits=UNLIMITED) as services:
            video = await register(db, await resolve(f"{url}/talk.mp4"))
            job = await run_video(db, services, video.youtube_id, config)
    assert (job.status, job.stage, job.error_code) == ("failed", "download", "source_too_large")
    assert "the limit is 100,000" in job.error_message
    assert [p for p in (tmp_path / "work").rglob("*") if p.is_file()] == [
        tmp_path / "work" / "videos" / video.youtube_id / "metadata.json"]


async def test_a_download_reports_progress_in_the_job_events(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "talk.mp4").write_bytes(sample_video().read_bytes())
    notes: list[str] = []
    config = WorkflowConfig(work_dir=tmp_path / "work", progress=lambda stage, text:
                            notes.append(f"{stage}: {text}"), **TINY)
    with web_server(site) as url:
        async with connect(f"sqlite:///{tmp_path}/t.db") as db, \
                open_services(sandbox_endpoints(build_app(SandboxConfig.unlimited())),
                              limits=UNLIMITED) as services:
            video = await register(db, await resolve(f"{url}/talk.mp4"))
            job = await run_video(db, services, video.youtube_id, config)
            events = [e.message for e in await jobs.job_events(db, job.id)]
    assert job.status == "completed"
    progress = [m for m in events if m and m.startswith("download: ")]
    assert progress[-1].startswith("download: 100%")
    assert progress == notes
    assert json.loads((tmp_path / "work" / "videos" / video.youtube_id / "metadata.json")
                      .read_text())["title"] == "talk"


class _RangeHandler(SimpleHTTPRequestHandler):
    """Serves ``bytes=N-`` ranges (what a resumed download asks for) and logs them."""

    ranges: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        if not wanted:
            return super().do_GET()
        self.ranges.append(wanted)
        body = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        start = int(wanted.removeprefix("bytes=").split("-")[0])
        self.send_response(206)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])
        return None

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


async def test_a_stopped_download_resumes_from_its_part_file(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    media = sample_video().read_bytes()
    (site / "talk.mp4").write_bytes(media)
    config = WorkflowConfig(work_dir=tmp_path / "work", **TINY)
    handler = functools.partial(_RangeHandler, directory=str(site))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}/talk.mp4"
        try:
            async with connect(f"sqlite:///{tmp_path}/t.db") as db, \
                    open_services(sandbox_endpoints(build_app(SandboxConfig.unlimited())),
                                  limits=UNLIMITED) as services:
                video = await register(db, await resolve(url))
                files = VideoFiles.of(config.work_dir, video.youtube_id)
                half = len(media) // 2
                files.downloads.mkdir(parents=True)
                (files.downloads / "media.mp4.part").write_bytes(media[:half])  # a killed run's
                job = await run_video(db, services, video.youtube_id, config)
        finally:
            server.shutdown()
            thread.join()
    assert job.status == "completed"
    assert _RangeHandler.ranges == [f"bytes={half}-"]
    assert files.source.read_bytes() == media
